"""The overlay a session changed, when the gate did not pass: nothing published (README "Choices":
"the active version must not keep a configuration nobody gated") restores it, whatever the
non-passing verdict, with and without xdist; a published version left ungated keeps it, and the
human's instructions name the overlay keys as well as the version rollback."""

from __future__ import annotations

import signal

import pytest
from kit.interrupts import InnerSession

from .conftest import MakePlatform, bundle
from .test_env import OVERLAY_AFTER, OVERLAY_BEFORE, files, overlay, promoted

pytestmark = pytest.mark.slow  # real sessions, seconds each: scheduled first (tests/conftest.py)

__all__ = ["files"]

# Every smoke test errors (a broken fixture): the draft's gate is inconclusive, never a pass.
ERRORING = """
import pytest


@pytest.fixture
def broken():
    raise RuntimeError("the test's own fixture is broken")


def test_one(scriptum_runner, broken):
    pass


def test_two(scriptum_runner, broken):
    pass
"""


@pytest.mark.parametrize("workers", [0, 2])
def test_an_inconclusive_draft_gate_restores_the_overlay(
    make_platform: MakePlatform, files: pytest.Pytester, workers: int
) -> None:
    platform = promoted(make_platform)
    (files.path / "test_calc.py").write_text(ERRORING)
    result = files.runpytest_subprocess(
        *platform.args(), "--scriptum-version=draft", "--scriptum-overlay=overlay.yaml", "-n", str(workers)
    )
    assert result.ret == 20, result.stdout.str()
    assert platform.active("calc") == 2
    assert platform.calls("PublishScriptDraft") == 0
    # The active v2 was never gated with the new overlay: it gets its own back.
    assert overlay(platform) == OVERLAY_BEFORE
    env = bundle(files)["env_changes"]
    assert (env["restore"], env["restored"]) == ("restored", ["LEGACY_MODEL", "MODEL", "TEMPERATURE"])
    result.stdout.fnmatch_lines(["env overlay: restored - overlay of calc restored to its snapshot*"])


def test_an_ungated_publish_names_the_overlay_keys_the_human_must_restore(
    make_platform: MakePlatform, files: pytest.Pytester
) -> None:
    platform = promoted(make_platform)
    # Pinned runs are held on the server: published, overlay applied, no run settled.
    platform.set_faults(latency_ms=120_000, methods=["CreateThread"])
    session = InnerSession(
        files, *platform.args("--scriptum-publish", "--scriptum-overlay=overlay.yaml", "--scriptum-retries=0")
    )
    platform.wait_for(lambda stats: stats.calls.get("CreateThread", 0) >= 1, "a pinned run arrived")
    session.signal(signal.SIGTERM)
    code, out = session.wait()
    assert code == 21, out
    assert platform.active("calc") == 3
    assert overlay(platform) == OVERLAY_AFTER  # nothing more changed after the signal
    message = (
        "calc v3 was published by this session and is ACTIVE, UNGATED (the session was interrupted by "
        "SIGTERM); roll it back: dodil scriptum version rollback calc --to 2; then restore the overlay "
        "keys LEGACY_MODEL, MODEL, TEMPERATURE of calc from your configuration source (this session's "
        "change stays; their earlier values were never stored)"
    )
    assert f"ACTION REQUIRED: {message}" in out
    data = bundle(files)
    assert (data["publish"]["status"], data["publish"]["message"]) == ("published_ungated", message)
    assert data["env_changes"]["restore"] == "kept"


def test_a_failed_gate_of_a_version_that_is_not_active_restores_the_overlay(
    make_platform: MakePlatform, files: pytest.Pytester
) -> None:
    platform = promoted(make_platform)
    platform.set_faults(fail_version=1)
    result = files.runpytest_subprocess(*platform.args(version=1), "--scriptum-overlay=overlay.yaml")
    assert result.ret == 1, result.stdout.str()
    assert bundle(files)["rollback"]["status"] == "candidate_not_active"
    # The gate blocks v1's promotion; the active v2 gets back the overlay it ran with.
    assert platform.active("calc") == 2
    assert overlay(platform) == OVERLAY_BEFORE
    assert bundle(files)["env_changes"]["restore"] == "restored"
