"""The paired baseline under pytest-rerunfailures (README "Reruns, timeouts, xfail": any failed
attempt makes the test failed). A regression on the first run followed by a passing rerun fails
the case and rolls back; the evidence must keep the first run's pairing (candidate failed,
baseline passed: one regression), not the rerun's (both passed), or the bundle's ``baseline``
says "0 regressions" for the gate that rolled back on one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kit.constants import ORG, TOKEN
from kit.evidence import read_valid_bundle
from kit.platform import Platform
from kit.seeds import write_seed

from pytest_scriptum.devserver import DevServer

# v3 (the candidate) fails its first run only: the first to create the flag file; v2 always passes.
_HANDLER = """
import os

VERSION = {version}


def handler(event, context):
    ok = True
    if VERSION == 3:
        try:
            os.close(os.open(event["flag"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            ok = False
        except FileExistsError:
            pass
    return {{"ok": ok, "version": VERSION}}
"""


@pytest.fixture
def platform(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """once v1-v3, v3 active (the candidate), v2 the rollback target and the paired baseline."""
    seed = write_seed(
        tmp_path_factory.mktemp("once-seed"),
        script="once",
        versions={v: _HANDLER.format(version=v) for v in (1, 2, 3)},
        active=3,
    )
    server = DevServer(data_dir=tmp_path_factory.mktemp("once-data"), seed=seed, principals={TOKEN: ORG})
    server.start()
    monkeypatch.setenv("DODIL_TOKEN", TOKEN)
    plat = Platform.of(server, token=TOKEN, org=ORG, script="once", session_args=("-rfE",))
    yield plat
    plat.close()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_regression_then_a_passing_rerun_stays_a_regression_in_the_evidence(
    pytester: pytest.Pytester, platform: Platform, tmp_path: Path, workers: str
) -> None:
    pytester.makeini("[pytest]\nscriptum_evidence = evidence/bundle.json\nscriptum_baseline = paired\n")
    pytester.makepyfile(
        test_once=f"""
import pytest

@pytest.mark.scriptum
@pytest.mark.smoke_input({{"flag": {str(tmp_path / "flag")!r}}})
@pytest.mark.smoke_expect({{"ok": True}})
def test_a():
    pass
"""
    )
    result = pytester.runpytest_subprocess(
        *platform.args(version=3), "-p", "no:randomly", "--reruns=1", "-n", workers
    )
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["verdict: FAIL - failed 1 of 1*", "paired baseline: *1 regressions*"])
    bundle = read_valid_bundle(pytester.path / "evidence" / "bundle.json")
    (test,) = bundle["tests"]
    assert (test["outcome"], test["attempts"]) == ("failed", 2)
    assert (test["baseline"]["candidate_outcome"], test["baseline"]["outcome"]) == ("failed", "passed")
    assert (bundle["baseline"]["candidate_failed"], bundle["baseline"]["regressions"]) == (1, 1)
    assert bundle["baseline"]["text"] == "baseline v2 also failed 0 of 1"
    # Both runs were paired: two threads on each side; then rolled back to v2 and verified there.
    assert sorted(t.version for t in platform.threads()) == [2, 2, 2, 3, 3]
    assert platform.calls("RollbackScript") == 1 and platform.active() == 2
