"""After CONSECUTIVE_ERRORS_LIMIT platform errors in a row the runner stops sending runs."""

from __future__ import annotations

import pytest
from kit import Platform
from kit.seeds.doubles import smoke_suite

from pytest_scriptum.runner import CONSECUTIVE_ERRORS_LIMIT


def test_consecutive_errors_open_the_circuit(pytester: pytest.Pytester, platform: Platform) -> None:
    tests = CONSECUTIVE_ERRORS_LIMIT + 3
    pytester.makepyfile(test_smoke=smoke_suite(tests))
    platform.set_faults(error_rate=1.0, error_status="UNAVAILABLE", methods=["CreateThread"])
    # One run at a time and no retries, so "in a row" is exact.
    result = pytester.runpytest(*platform.args("--scriptum-concurrency=1", "--scriptum-retries=0", version=2))
    assert result.ret == 20, result.stdout.str()
    result.assert_outcomes(errors=tests)
    out = result.stdout.str()
    assert f"not dispatched: {CONSECUTIVE_ERRORS_LIMIT} consecutive platform errors" in out
    assert "verdict: INCONCLUSIVE" in out
    stats = platform.stats()
    assert stats.calls["CreateThread"] == CONSECUTIVE_ERRORS_LIMIT < tests
    assert stats.runs_started == 0
    assert stats.rollbacks_applied == 0
