"""The overlay a session changed, when the gate did not pass and nothing was published (README
"Choices": "the active version must not keep a configuration nobody gated"): restored, whatever
the non-passing verdict (fail, inconclusive), with and without xdist."""

from __future__ import annotations

import pytest

from .conftest import MakePlatform, bundle
from .test_env import OVERLAY_BEFORE, files, overlay, promoted

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
