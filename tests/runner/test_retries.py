"""Platform errors the client retries: a burst on any call of a run is absorbed, a budget overrun
is inconclusive and rolls nothing back, RESOURCE_EXHAUSTED's retry hint is honoured, added
latency changes nothing."""

from __future__ import annotations

import pytest
from kit import Platform
from kit.seeds.doubles import smoke_suite

# Every call of a run: starting it, following it (the stream is subscribed again), reading its result.
RUN_METHODS = ["CreateThread", "WatchThread", "GetThreadResult"]


@pytest.mark.parametrize("method", RUN_METHODS)
def test_an_error_burst_on_any_call_of_a_run_is_absorbed(
    pytester: pytest.Pytester, platform: Platform, method: str
) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(3))
    clean = pytester.runpytest(*platform.args(version=3))
    assert clean.ret == 0, clean.stdout.str()
    clean.assert_outcomes(passed=3)
    clean_calls = platform.stats().calls[method]  # e.g. GetThreadResult: metadata, then output
    assert clean_calls >= 3
    platform.reset()

    platform.set_faults(error_next=2, error_status="UNAVAILABLE", methods=[method])
    burst = pytester.runpytest(*platform.args(version=3))
    assert burst.ret == clean.ret, burst.stdout.str()
    burst.assert_outcomes(passed=3)
    assert "verdict: PASS" in burst.stdout.str()
    stats = platform.stats()
    assert stats.calls[method] == clean_calls + 2  # both injected failures were retried...
    assert stats.runs_started == 3  # ...and no run was executed twice
    assert stats.rollbacks_applied == 0


def test_errors_beyond_the_budget_are_inconclusive_and_roll_nothing_back(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    # v2 is active and bad: had any run come back, the gate would fail and roll it back.
    pytester.makepyfile(test_smoke=smoke_suite(2))
    platform.set_faults(error_rate=1.0, error_status="UNAVAILABLE", methods=["CreateThread"])
    result = pytester.runpytest(*platform.args("--scriptum-retries=1", version=2))
    assert result.ret == 20, result.stdout.str()
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert "verdict: INCONCLUSIVE" in out
    assert "gave up after 2 attempts" in out
    stats = platform.stats()
    assert stats.calls["CreateThread"] == 2 * 2  # each run: one try + one retry, then it errors
    assert stats.runs_started == 0
    assert stats.rollbacks_applied == 0
    assert platform.script().active_version == 2
    assert platform.rollbacks_in_history() == []


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_resource_exhausted_waits_for_the_servers_retry_hint(
    pytester: pytest.Pytester, platform: Platform, transport: str
) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(1))
    platform.set_faults(error_next=1, error_status="RESOURCE_EXHAUSTED", methods=["CreateThread"])
    result = pytester.runpytest(
        *platform.args(
            f"--scriptum-transport={transport}", "-o", "log_cli=true", "--log-cli-level=DEBUG", version=3
        )
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)
    # The injected error carries a 1 s hint (trailing metadata / Retry-After): the client waits
    # exactly that, not its own jittered backoff of at most 0.1 s.
    result.stdout.fnmatch_lines(["*CreateThread: RESOURCE_EXHAUSTED on attempt 1 of 3, retrying in 1.000s*"])
    stats = platform.stats()
    assert stats.calls["CreateThread"] == 2
    assert stats.runs_started == 1


def test_latency_spikes_keep_the_verdict(pytester: pytest.Pytester, platform: Platform) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(3))
    platform.set_faults(latency_ms=150)  # every call, preflight included
    good = pytester.runpytest(*platform.args(version=3))
    assert good.ret == 0, good.stdout.str()
    good.assert_outcomes(passed=3)

    bad = pytester.runpytest(*platform.args("--scriptum-rollback=dry-run", version=2))
    assert bad.ret == 1, bad.stdout.str()
    bad.assert_outcomes(failed=3)
    assert "verdict: FAIL" in bad.stdout.str()
    assert "rollback: dry_run" in bad.stdout.str()
    assert platform.stats().runs_started == 6
    assert platform.script().active_version == 2
