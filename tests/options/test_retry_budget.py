"""Issue 12 input 9: retries are bounded per call (``--scriptum-retries`` <= 10) and per session: a
client's retries add at most ``RETRY_BUDGET_RATIO`` of its calls beyond ``RETRY_BUDGET_MIN`` (a
platform in an outage gets 20 % more load, never eleven times the load). Shown against a real dev
server whose every GetScript answers UNAVAILABLE, counting the attempts that reached it."""

from __future__ import annotations

from pathlib import Path

import pytest
from kit import TOKEN
from kit.interrupts import fresh_calc

from pytest_scriptum._limits import MAX_RETRIES, RETRY_BUDGET_MIN, RETRY_BUDGET_RATIO
from pytest_scriptum.client import ClientSettings, RetryPolicy, ScriptumError, connect

CALLS = 30


def test_a_session_spends_at_most_its_retry_budget(tmp_path: Path) -> None:
    platform = fresh_calc(tmp_path)
    try:
        platform.set_faults(error_rate=1.0, error_status="UNAVAILABLE", methods=["GetScript"])
        client = connect(
            ClientSettings(
                endpoint=platform.grpc,
                http_url=platform.http,
                org=platform.org,
                token=TOKEN,
                retry=RetryPolicy(retries=MAX_RETRIES, base_delay_s=0.0, max_delay_s=0.0),
            )
        )
        messages = []
        for _ in range(CALLS):
            with pytest.raises(ScriptumError) as failed:
                client.get_script("calc")
            messages.append(str(failed.value))
        client.close()
        attempts = platform.calls("GetScript")
    finally:
        platform.close()
    budget = RETRY_BUDGET_MIN + RETRY_BUDGET_RATIO * CALLS
    # Unbounded, 30 calls x 11 attempts would be 330.
    assert CALLS + RETRY_BUDGET_MIN <= attempts <= CALLS + budget + 1, attempts
    assert "gave up after 11 attempts" in messages[0]  # the first call had its full retries
    assert "the session's retry budget is spent" in messages[-1]
