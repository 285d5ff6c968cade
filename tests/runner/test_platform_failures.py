"""A thread the platform marks as failed through its own fault (error_code PLATFORM_*: no free
worker, a runtime crash, a restart, a deadline the server could not honour) is never the
candidate's failure: the test errors, the gate is inconclusive, and the bad active candidate is
*not* rolled back — even though every one of its runs would have failed."""

from __future__ import annotations

import pytest
from kit import Platform
from kit.seeds.doubles import smoke_suite

PLATFORM_CODES = ["PLATFORM_CAPACITY", "PLATFORM_RUNTIME_CRASH", "PLATFORM_RESTART", "PLATFORM_DEADLINE"]


@pytest.mark.parametrize("code", PLATFORM_CODES)
def test_a_platform_marked_failure_is_an_error_never_a_rollback(
    pytester: pytest.Pytester, platform: Platform, code: str
) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(2))
    platform.set_faults(platform_failure=code)
    # v2 is active and bad: a single decided failure would fail the gate and roll it back.
    result = pytester.runpytest(*platform.args("--scriptum-rollback=auto", version=2))
    assert result.ret == 20, result.stdout.str()
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert code in out
    assert "verdict: INCONCLUSIVE" in out
    assert "rollback: rolled_back" not in out
    stats = platform.stats()
    assert stats.calls["CreateThread"] >= 2
    assert stats.rollbacks_applied == 0
    assert platform.script().active_version == 2
    assert platform.rollbacks_in_history() == []


def test_the_same_suite_without_the_fault_fails_the_gate(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    # The control: the platform failures above are what kept v2 from failing (dry-run: the shared
    # server's state must not change).
    pytester.makepyfile(test_smoke=smoke_suite(2))
    result = pytester.runpytest(*platform.args("--scriptum-rollback=dry-run", version=2))
    assert result.ret == 1, result.stdout.str()
    result.assert_outcomes(failed=2)
    assert "rollback: dry_run" in result.stdout.str()
