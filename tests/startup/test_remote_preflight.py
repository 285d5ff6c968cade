"""DESIGN section 3 "Run modes" / "Preflight" on a remote endpoint: there is no server to start,
and the preflight runs only when a smoke test is selected (after collection, before the first
test); a session without one makes no call at all, read from the server's counters."""

from __future__ import annotations

import json

import pytest
from kit.platform import Platform
from kit.seeds.doubles import smoke_suite


def _calls(platform: Platform) -> int:
    return sum(platform.stats().calls.values())


@pytest.mark.parametrize("workers", ["0", "2"])
def test_no_smoke_test_makes_no_call_and_is_inconclusive(
    pytester: pytest.Pytester, platform: Platform, workers: str
) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    before = _calls(platform)
    result = pytester.runpytest(*platform.args("-n", workers, "--scriptum-evidence=ev/b.json", version=2))
    assert result.ret == 20, result.stdout.str()
    assert _calls(platform) == before  # no preflight, no thread, no rollback
    bundle = json.loads((pytester.path / "ev" / "b.json").read_text())
    assert (bundle["verdict"], bundle["preflight"], bundle["rollback"]) == ("inconclusive", None, None)
    assert platform.active() == 2


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_smoke_session_runs_the_preflight_once_before_its_tests(
    pytester: pytest.Pytester, platform: Platform, workers: str
) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(2))
    before = platform.stats().calls.get("GetScript", 0)
    args = platform.args("-n", workers, "--scriptum-rollback=off", "--scriptum-evidence=ev/b.json", version=2)
    result = pytester.runpytest(*args)
    out = result.stdout.str()
    assert result.ret == 1, out  # v2 is the bad version: the gate fails, rollback is off
    assert "scriptum: preflight passed" in out
    assert out.index("scriptum: preflight passed") < out.index("FAILED")
    assert platform.stats().calls.get("GetScript", 0) > before
    bundle = json.loads((pytester.path / "ev" / "b.json").read_text())
    assert bundle["preflight"]["ok"] is True
    assert bundle["verdict"] == "fail"
    assert platform.active() == 2
