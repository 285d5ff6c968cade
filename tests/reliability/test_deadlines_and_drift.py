"""Whose fault is it: a platform that stalls past the client's deadline or reports another
version is a platform error (the test errors, the gate is inconclusive); a handler that runs
past the platform's own deadline is the candidate's failure (TIMED_OUT -> failed)."""

from __future__ import annotations

import pytest
from helpers import Platform
from reliability_kit import smoke_suite


def test_a_stalled_run_past_the_client_deadline_is_an_error(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(2))
    platform.set_faults(stall=True, methods=["RunThread"])
    # The client's deadline for a run is the run timeout plus a 5 s margin.
    result = pytester.runpytest(*platform.args("--scriptum-timeout=0.1", version=3))
    assert result.ret == 20, result.stdout.str()
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert "platform error (not a candidate failure): RunThread: DEADLINE_EXCEEDED" in out
    assert "verdict: INCONCLUSIVE" in out
    stats = platform.stats()
    assert stats.calls["RunThread"] == 2  # a run that may have happened is never sent again
    assert stats.runs_started == 0


def test_a_handler_past_the_platform_deadline_is_a_failure(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(1, sleep_s=30.0, marker=", timeout=0.5"))
    result = pytester.runpytest(*platform.args(version=3))
    # v3 is not active: the failed gate blocks its promotion, nothing to roll back.
    assert result.ret == 1, result.stdout.str()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "TIMED_OUT" in out
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
