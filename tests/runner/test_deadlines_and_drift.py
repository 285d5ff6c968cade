"""Whose fault is it: a platform that stalls past the client's deadline or reports another
version is a platform error (the test errors, the gate is inconclusive); a handler that runs
past the thread's own deadline is the candidate's failure (FAILED with error_code SCRIPT_DEADLINE
-> failed)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from kit import Platform
from kit.seeds.doubles import smoke_suite

pytestmark = pytest.mark.slow  # real sessions, seconds each: scheduled first (tests/conftest.py)

# CreateThread stalled (never applied) or applied at once but answered only after the client's
# call deadline (an ambiguous outcome): either way the test errors, and no case runs twice.
# Name -> (the fault, how many of the two runs the platform executed).
CREATE_FAULTS: dict[str, tuple[dict[str, Any], int]] = {
    "stalled": ({"stall": True}, 0),
    "applied-late": ({"latency_after_ms": 15_000}, 2),
}


@pytest.mark.parametrize("fault", CREATE_FAULTS)
def test_a_create_thread_past_the_client_deadline_is_an_error(
    pytester: pytest.Pytester, platform: Platform, fault: str
) -> None:
    settings, executed = CREATE_FAULTS[fault]
    pytester.makepyfile(test_smoke=smoke_suite(2))
    platform.set_faults(methods=["CreateThread"], **settings)
    result = pytester.runpytest(*platform.args("--scriptum-timeout=1", version=3))
    assert result.ret == 20, result.stdout.str()
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert "platform error (not a candidate failure): CreateThread: DEADLINE_EXCEEDED" in out
    assert "verdict: INCONCLUSIVE" in out
    stats = platform.settled_stats()
    assert stats.calls["CreateThread"] >= 2
    assert stats.runs_started == executed  # a re-sent CreateThread would have to name the same thread


def test_a_stalled_watch_is_an_error_and_the_run_is_not_repeated(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    # The threads run and finish on the platform, but nobody can see them finish: neither the
    # stream nor the GetThread look the client takes at its deadline answers, even when retried.
    # The test errors, and each case's thread was created and executed exactly once.
    pytester.makepyfile(test_smoke=smoke_suite(2))
    platform.set_faults(stall=True, methods=["WatchThread", "GetThread"])
    result = pytester.runpytest(*platform.args("--scriptum-timeout=1", "--scriptum-retries=1", version=3))
    assert result.ret == 20, result.stdout.str()
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert "platform error (not a candidate failure)" in out and "DEADLINE_EXCEEDED" in out
    assert "verdict: INCONCLUSIVE" in out
    stats = platform.settled_stats()
    assert stats.calls["GetThread"] >= 2 * 2  # each test's look was retried...
    assert (stats.calls["CreateThread"], stats.runs_started) == (2, 2)  # ...the runs never were


def test_a_handler_past_the_thread_deadline_is_a_failure(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(1, sleep_s=30.0, marker=", timeout=0.5"))
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest(*platform.args(f"--junitxml={junit}", version=3))
    # v3 is not active: the failed gate blocks its promotion, nothing to roll back.
    assert result.ret == 1, result.stdout.str()
    result.assert_outcomes(failed=1)
    (case,) = ET.parse(junit).getroot().iter("testcase")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert (properties["scriptum.status"], properties["scriptum.error_code"]) == ("FAILED", "SCRIPT_DEADLINE")
    out = result.stdout.str()
    assert "deadline" in out
    assert "verdict: FAIL" in out
    assert "rollback: candidate_not_active" in out


def test_version_drift_is_an_error_not_a_failure(pytester: pytest.Pytester, platform: Platform) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(2))
    platform.set_faults(version_skew=1)
    result = pytester.runpytest(*platform.args(version=2))
    assert result.ret == 20, result.stdout.str()
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert "version drift: the run was pinned to calc v2 but the platform reported calc v3" in out
    assert "verdict: INCONCLUSIVE" in out
    assert platform.stats().rollbacks_applied == 0
    assert platform.script().active_version == 2
