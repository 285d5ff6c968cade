"""``--scriptum-concurrency=auto`` (the default, issue 18, DESIGN section 6): the in-flight limit
rises while the platform keeps up and falls when it pushes back; throttled runs are retried on the
platform's hint and end passed, never errored. Asserted on the server's counters and on the
bundle's ``concurrency`` record; the limit's arithmetic on ``InFlightLimit`` itself.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kit import ORG, TOKEN, Platform
from kit.seeds.svc import CANDIDATE, CASES_TEST, SCRIPT, StartPlatform, write_cases

from pytest_scriptum.client import connect
from pytest_scriptum.client._settings import ClientSettings
from pytest_scriptum.runner import (
    AUTO_CAP,
    AUTO_START,
    BACKOFF_FACTOR,
    Dispatcher,
    InFlightLimit,
    PinnedRunner,
    RunRequest,
)

# Quick echo; with "need", waits until that many runs have arrived at once (a file per arrival),
# giving up after 20 s and saying so: the barrier proves `need` runs were in flight together.
HANDLER = """
import os
import time
import uuid

def handler(event, context):
    if "need" not in event:
        return {{"id": event["id"]}}
    arrivals = {dir!r}
    open(os.path.join(arrivals, uuid.uuid4().hex), "w").close()
    deadline = time.monotonic() + 20.0
    while len(os.listdir(arrivals)) < event["need"]:
        if time.monotonic() > deadline:
            return {{"id": event["id"], "met": False}}
        time.sleep(0.01)
    return {{"id": event["id"], "met": True}}
"""


def _suite(
    pytester: pytest.Pytester, start_platform: StartPlatform, events: list[dict[str, Any]]
) -> Platform:
    arrivals = pytester.path / "arrivals"
    arrivals.mkdir()
    source = HANDLER.format(dir=str(arrivals))
    platform = start_platform({1: source, 2: source})
    expected: list[object] = [
        {"id": e["id"], "met": True} if "need" in e else {"id": e["id"]} for e in events
    ]
    write_cases(pytester.path / "cases", events, expected)
    pytester.makepyfile(test_cases=CASES_TEST)
    return platform


def _concurrency(bundle: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(bundle.read_text())["concurrency"]
    return record


def test_auto_is_the_default_and_the_limit_rises_while_the_platform_keeps_up(
    pytester: pytest.Pytester, start_platform: StartPlatform
) -> None:
    # 4 quick runs first (the starting limit), then 8 that only pass if 8 are in flight at once:
    # they can, only because each quick run that completed without pushback raised the limit.
    quick = [{"id": i} for i in range(AUTO_START)]
    together = [{"id": i, "need": 8} for i in range(AUTO_START, AUTO_START + 8)]
    platform = _suite(pytester, start_platform, quick + together)
    bundle = pytester.path / "scriptum.json"

    result = pytester.runpytest(*platform.args(f"--scriptum-evidence={bundle}"))

    result.assert_outcomes(passed=len(quick) + len(together))
    stats = platform.settled_stats()
    assert stats.max_threads_in_flight >= 8 > AUTO_START  # the server saw the limit rise
    assert (stats.runs_throttled, stats.runs_started) == (0, 12)
    record = _concurrency(bundle)
    assert (record["mode"], record["start"], record["cap"]) == ("auto", AUTO_START, AUTO_CAP)
    assert record["max_reached"] >= 8 and record["max_limit"] >= 8
    assert (record["backoffs"], record["pushbacks"], record["max_reached_after_backoff"]) == (0, 0, 0)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_throttled_runs_back_the_limit_off_and_end_passed(
    pytester: pytest.Pytester, start_platform: StartPlatform, transport: str
) -> None:
    # The hint arrives as retry-after-ms / RetryInfo over gRPC, as 429 + Retry-After over HTTP.
    k = 3  # below the starting limit: the platform pushes back at once
    cases = 16
    platform = _suite(pytester, start_platform, [{"id": i} for i in range(cases)])
    platform.set_faults(max_in_flight=k)
    bundle = pytester.path / "scriptum.json"

    # A generous retry budget: on a loaded machine the runs ahead of a throttled one may outlast a
    # 1 s hint, and the budget, not the limit, is what this test is about.
    result = pytester.runpytest(
        *platform.args(
            f"--scriptum-evidence={bundle}", f"--scriptum-transport={transport}", "--scriptum-retries=5"
        )
    )

    result.assert_outcomes(passed=cases)  # a throttled run retried on the hint is no error
    stats = platform.settled_stats()
    assert stats.runs_throttled >= 1  # the platform did push back ...
    assert stats.max_threads_in_flight <= k  # (the server enforces K) ...
    assert stats.runs_started == cases  # ... and no run was started twice
    record = _concurrency(bundle)
    assert record["backoffs"] >= 1 and record["pushbacks"] == stats.runs_throttled
    # After the first throttle the client kept at most K + 1 runs in flight (its own count: a run
    # waiting out a retry hint included). The limit's final value is not bounded by K: once the
    # platform stops pushing back (the last runs settle) the limit probes upwards again, as AIMD
    # does; what must hold is the number of runs in flight, above and on the server.
    assert 1 <= record["max_reached_after_backoff"] <= k + 1


# Echoes the id; with "gate", first waits (up to 30 s, then says so) until that file exists: the
# test decides when a held run may finish, so which runs are in flight together is not left to timing.
GATED = """
import os
import time

def handler(event, context):
    if "gate" not in event:
        return {"id": event["id"]}
    deadline = time.monotonic() + 30.0
    while not os.path.exists(event["gate"]):
        if time.monotonic() > deadline:
            return {"id": event["id"], "gate": "never opened"}
        time.sleep(0.01)
    return {"id": event["id"]}
"""


def test_a_refused_run_waits_without_a_slot_and_the_platform_keeps_running_k_of_ours(
    start_platform: StartPlatform, tmp_path: Path
) -> None:
    # K runs held on the platform, then one more: refused with a 1 s hint. The refusal says the
    # platform takes K of ours, so the limit becomes K (not 0.7 K) and the refused run holds no slot
    # while it waits. Once the first K finish, K runs must be in flight again: the refused run first
    # (it waited its hint and queued before the new runs), then K new held runs together. Before
    # session 5 the limit fell to int(0.7 K) with the refused run holding one of those slots, and
    # the K new runs could never be in flight together.
    k = 3
    platform = start_platform({1: GATED, CANDIDATE: GATED})
    platform.set_faults(max_in_flight=k)
    first, second = tmp_path / "first", tmp_path / "second"
    client = connect(ClientSettings(endpoint=platform.grpc, http_url=platform.http, org=ORG, token=TOKEN))
    dispatcher = Dispatcher(PinnedRunner(client, version=CANDIDATE, script=SCRIPT, timeout=60.0), "auto")
    limit = dispatcher.limit
    keys = [f"first{i}" for i in range(k)] + ["refused"] + [f"second{i}" for i in range(k)]
    try:
        for i in range(k):
            dispatcher.submit(keys[i], RunRequest(input={"id": i, "gate": str(first)}))
        platform.wait_for(lambda s: s.threads_in_flight == k, f"{k} held runs in flight")
        _until(lambda: limit.limit == AUTO_START + k, "slow start grew by one per accepted run")
        dispatcher.submit("refused", RunRequest(input={"id": k}))
        platform.wait_for(lambda s: s.runs_throttled == 1, "the run beyond K refused")
        _until(lambda: limit.backoffs == 1, "the refusal seen by the limit")
        assert limit.limit == k  # what the platform took, not int(BACKOFF_FACTOR * k)
        for i in range(k):
            dispatcher.submit(f"second{i}", RunRequest(input={"id": k + 1 + i, "gate": str(second)}))
        _until(lambda: limit.retries_waiting == 1, "the refused run waited out its hint")
        first.touch()
        # The refused run and all K second runs started (2 K + 1), and K of ours are in flight.
        stats = platform.wait_for(
            lambda s: s.runs_started == 2 * k + 1 and s.threads_in_flight == k,
            f"the refused run done and {k} new runs in flight together",
            timeout_s=20.0,
        )
        second.touch()
        outputs = [dispatcher.result(key).output for key in keys]
    finally:
        first.touch()
        second.touch()
        dispatcher.close()
        client.close()
    assert outputs == [{"id": i} for i in range(2 * k + 1)]  # all passed, the refused one too
    stats = platform.settled_stats()
    assert (stats.runs_throttled, stats.runs_started, stats.max_threads_in_flight) == (1, 2 * k + 1, k)
    record = limit.record()
    assert (record["backoffs"], record["pushbacks"]) == (1, 1)
    assert record["max_reached_after_backoff"] == k  # the refused run's retry took a freed slot


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Wait until ``condition()`` holds (a condition, not a fixed sleep); AssertionError after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    ticker = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never reached: {what}")
        ticker.wait(0.01)


def test_throttled_under_xdist_every_run_ends_passed_at_the_default_retries(
    pytester: pytest.Pytester, start_platform: StartPlatform
) -> None:
    # Two workers, each with its own limit, share the organization's K: a refused run's retry
    # competes with the other worker's runs, and must still get through (within the default
    # --scriptum-retries) and pass, as in the single-process session above.
    k, cases = 3, 24
    platform = _suite(pytester, start_platform, [{"id": i} for i in range(cases)])
    platform.set_faults(max_in_flight=k)

    result = pytester.runpytest_subprocess(*platform.args("-n", "2"))

    result.assert_outcomes(passed=cases)
    stats = platform.settled_stats()
    assert stats.runs_throttled >= 1 and stats.max_threads_in_flight <= k
    assert stats.runs_started == cases


def test_a_number_fixes_the_limit_and_nothing_adapts(
    pytester: pytest.Pytester, start_platform: StartPlatform
) -> None:
    platform = _suite(pytester, start_platform, [{"id": i} for i in range(8)])
    bundle = pytester.path / "scriptum.json"

    result = pytester.runpytest(*platform.args(f"--scriptum-evidence={bundle}", "--scriptum-concurrency=2"))

    result.assert_outcomes(passed=8)
    assert platform.settled_stats().max_threads_in_flight <= 2
    record = _concurrency(bundle)
    assert (record["mode"], record["start"], record["cap"], record["final"]) == ("fixed", 2, 2, 2)


def test_a_bad_concurrency_value_names_auto(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest("--scriptum-concurrency=lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--scriptum-concurrency*expected auto or an integer >= 1*"])


# ---- the arithmetic of InFlightLimit (no platform needed: it is a pure data structure) ----------


def _take(limit: InFlightLimit, count: int) -> list[Any]:
    """``count`` runs started and accepted by the platform (still in flight)."""
    slots = []
    for _ in range(count):
        slot = limit.acquire()
        assert slot is not None
        limit.accepted(slot)
        slots.append(slot)
    return slots


def _complete(limit: InFlightLimit, times: int, overhead_s: float = 0.01) -> None:
    """``times`` runs one after another, each accepted and completed."""
    for _ in range(times):
        (slot,) = _take(limit, 1)
        limit.release(slot, completed=True, overhead_s=overhead_s)


def test_slow_start_grows_by_one_per_accepted_run_then_about_one_per_round() -> None:
    limit = InFlightLimit()
    assert limit.limit == AUTO_START
    _complete(limit, 6)
    assert limit.limit == AUTO_START + 6  # +1 per run the platform accepted
    running = _take(limit, 6)
    assert limit.limit == AUTO_START + 12
    refused = limit.acquire()
    assert refused is not None
    limit.pushback(refused)
    # The backoff starts from what the platform took (6 in flight), not from the limit it outran.
    backed_off = int(6 * BACKOFF_FACTOR)
    assert (limit.limit, limit.backoffs) == (backed_off, 1)
    limit.accepted(refused)  # its retry got through
    limit.release(refused, completed=True)
    for slot in running:  # after a backoff a completed run adds 1/limit
        limit.release(slot, completed=True, overhead_s=0.01)
    assert limit.limit == backed_off + 1
    assert limit.record()["max_limit"] == AUTO_START + 12


def test_one_decrease_per_round_and_no_growth_while_a_pushed_back_run_waits() -> None:
    limit = InFlightLimit()
    first, second = limit.acquire(), limit.acquire()
    assert first is not None and second is not None
    others = _take(limit, 2)
    limit.pushback(first)
    limit.pushback(second)  # started before the decrease: no second one
    assert limit.backoffs == 1 and limit.limit == max(1, int(2 * BACKOFF_FACTOR))
    for slot in others:
        limit.release(slot, completed=True, overhead_s=0.01)
    assert limit.limit == 1  # first and second still wait: no growth
    for slot in (first, second):
        limit.accepted(slot)
        limit.release(slot, completed=True)
    _complete(limit, 4)
    assert limit.limit > 1
    assert limit.record()["pushbacks"] == 2


def test_latency_well_above_the_baseline_is_a_pushback_and_the_cap_holds() -> None:
    limit = InFlightLimit()
    _complete(limit, 200, overhead_s=0.01)
    assert limit.limit == AUTO_CAP and limit.backoffs == 0
    running = _take(limit, 20)
    slow = running.pop()
    limit.release(running.pop(), completed=True, overhead_s=0.03)  # 3x the least, only 20 ms more
    assert limit.backoffs == 0
    limit.release(slow, completed=True, overhead_s=2.0)  # a platform that queues instead of refusing
    assert limit.backoffs == 1 and limit.limit == int(19 * BACKOFF_FACTOR)
    for slot in running:
        limit.release(slot, completed=True, overhead_s=0.01)


def test_a_fixed_limit_never_moves() -> None:
    limit = InFlightLimit(3)
    slot = limit.acquire()
    assert slot is not None
    limit.pushback(slot)
    limit.release(slot, completed=True, overhead_s=9.0)
    _complete(limit, 10)
    assert (limit.limit, limit.backoffs) == (3, 0)
    with pytest.raises(ValueError, match="'auto' or an integer >= 1"):
        InFlightLimit(0)


def test_a_refusal_sets_the_limit_to_what_the_platform_took_and_gives_the_slot_back() -> None:
    limit = InFlightLimit()
    running = _take(limit, 3)
    late = limit.acquire()  # its create was accepted, but the answer comes after the refusal's
    refused = limit.acquire()
    assert late is not None and refused is not None
    limit.pushback(refused, refused=True)
    # No BACKOFF_FACTOR: the 3 the platform had accepted (of the limit of 7 that slow start reached).
    assert (limit.limit, limit.backoffs) == (3, 1)
    limit.accepted(late)  # it started before the refusal: the platform took it too
    assert limit.limit == 4
    # The refused run holds no slot while it waits: 4 in flight, under a limit of 4.
    assert limit.record()["max_reached"] == 5
    newcomer = limit.acquire(_set())
    assert newcomer is None  # full: 4 of 4 (a cancelled wait returns None)
    limit.release(running.pop(), completed=True, overhead_s=0.01)
    assert limit.resume(refused) is True  # the room goes to the refused run's retry
    assert limit.acquire(_set()) is None  # and not to a new run: 4 of 4 again
    limit.accepted(refused)
    for slot in [*running, late, refused]:
        limit.release(slot, completed=True, overhead_s=0.01)
    assert limit.record()["max_reached_after_backoff"] == 4


def test_a_refused_run_retries_before_new_runs_and_a_pushback_without_a_hint_still_backs_off() -> None:
    limit = InFlightLimit()
    running = _take(limit, 2)
    refused = limit.acquire()
    assert refused is not None
    limit.pushback(refused, refused=True)
    assert limit.limit == 2
    order: list[str] = []
    retry = threading.Thread(target=lambda: order.append(f"retry {limit.resume(refused)}"))
    retry.start()
    _until(lambda: limit.retries_waiting == 1, "the retry queued")
    newcomer = threading.Thread(target=lambda: order.append(f"new {limit.acquire() is not None}"))
    newcomer.start()
    limit.release(running.pop(), completed=True, overhead_s=0.01)  # one slot frees: the retry's
    retry.join(10)
    assert order == ["retry True"]
    limit.release(running.pop(), completed=True, overhead_s=0.01)
    newcomer.join(10)
    assert order == ["retry True", "new True"]
    # UNAVAILABLE or rising latency says nothing about the platform's count: 0.7 as before.
    plain = InFlightLimit()
    _take(plain, 6)
    pushed = plain.acquire()
    assert pushed is not None
    plain.pushback(pushed)
    assert plain.limit == int(6 * BACKOFF_FACTOR)
    assert plain.resume(pushed) is True  # it kept its slot: nothing to take back


def test_a_fixed_limit_keeps_a_refused_runs_slot() -> None:
    limit = InFlightLimit(2)
    slot = limit.acquire()
    assert slot is not None
    limit.pushback(slot, refused=True)
    assert (limit.limit, limit.backoffs) == (2, 0)
    other = limit.acquire()
    assert other is not None and limit.acquire(_set()) is None  # still 2 of 2: the refused one counts
    assert limit.resume(slot) is True


def _set() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


def test_a_run_pushed_back_after_it_got_through_does_not_stop_the_growth() -> None:
    # UNAVAILABLE on the watch of an accepted run: a backoff, but nothing waits to get through,
    # so the runs after it grow the limit again (about one per round).
    limit = InFlightLimit()
    (watched,) = _take(limit, 1)
    limit.pushback(watched)
    limit.release(watched, completed=False)
    assert (limit.limit, limit.backoffs) == (1, 1)  # from the one run the platform had taken
    _complete(limit, 4)
    assert limit.limit == 3  # 1 + 1/1 + 1/2 + 1/2.5 + 1/2.9
