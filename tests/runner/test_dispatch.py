"""Early dispatch: results land on the right tests, runs really overlap, and the bound holds."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from kit import Platform
from kit.seeds.svc import CASES_TEST, StartPlatform, write_cases

pytestmark = pytest.mark.slow  # real sessions, seconds each: scheduled first (tests/conftest.py)

# Echoes the case id after a random pause, so under concurrency the answers come back shuffled.
ECHO = """
import random
import time

def handler(event, context):
    time.sleep(random.uniform(0.0, 0.05))
    return {"id": event["id"]}
"""

# Waits until `need` runs have arrived at once (a file per arrival); gives up after 20 s and says so.
BARRIER = """
import os
import time
import uuid

def handler(event, context):
    arrivals = {dir!r}
    open(os.path.join(arrivals, uuid.uuid4().hex), "w").close()
    deadline = time.monotonic() + 20.0
    while len(os.listdir(arrivals)) < event["need"]:
        if time.monotonic() > deadline:
            return {{"id": event["id"], "met": False}}
        time.sleep(0.01)
    return {{"id": event["id"], "met": True}}
"""


def _thread_ids(junit: Path) -> dict[str, str]:
    """test name -> scriptum.thread_id from the JUnit properties."""
    ids = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        ids[case.get("name", "")] = props["scriptum.thread_id"] or ""
    return ids


def _barrier_suite(
    pytester: pytest.Pytester, start_platform: StartPlatform, cases: int, need: int
) -> Platform:
    arrivals = pytester.path / "arrivals"
    arrivals.mkdir()
    platform = start_platform({1: BARRIER.format(dir=str(arrivals)), 2: BARRIER.format(dir=str(arrivals))})
    events: list[dict[str, object]] = [{"id": i, "need": need} for i in range(cases)]
    write_cases(pytester.path / "cases", events, [{"id": i, "met": True} for i in range(cases)])
    pytester.makepyfile(test_barrier=CASES_TEST)
    return platform


def test_each_result_lands_on_its_own_test(pytester: pytest.Pytester, start_platform: StartPlatform) -> None:
    platform = start_platform({1: ECHO, 2: ECHO})
    cases = 24
    write_cases(pytester.path / "cases", [{"id": i} for i in range(cases)], [{"id": i} for i in range(cases)])
    pytester.makepyfile(test_echo=CASES_TEST)
    junit = pytester.path / "junit.xml"

    result = pytester.runpytest(*platform.args(f"--junitxml={junit}"))

    result.assert_outcomes(passed=cases)
    ids = _thread_ids(junit)
    assert len(set(ids.values())) == cases  # one thread per test, none shared
    for name, thread_id in ids.items():  # and each test holds the thread of its own case
        case = int(name.split("[c")[1].rstrip("]"))
        assert json.loads(platform.result(thread_id).output_data) == {"id": case}
    assert platform.settled_stats().runs_started == cases  # each case ran exactly once


def test_concurrency_option_bounds_runs_in_flight(
    pytester: pytest.Pytester, start_platform: StartPlatform
) -> None:
    # The barrier proves 3 runs overlap; the server's high-water mark proves never more than 3.
    platform = _barrier_suite(pytester, start_platform, cases=9, need=3)

    result = pytester.runpytest(*platform.args("--scriptum-concurrency=3"))

    result.assert_outcomes(passed=9)
    stats = platform.settled_stats()
    assert stats.max_runs_in_flight == 3
    assert stats.runs_started == 9


def test_concurrency_one_runs_one_at_a_time(pytester: pytest.Pytester, start_platform: StartPlatform) -> None:
    platform = _barrier_suite(pytester, start_platform, cases=4, need=1)

    result = pytester.runpytest(*platform.args("--scriptum-concurrency=1"))

    result.assert_outcomes(passed=4)
    assert platform.settled_stats().max_runs_in_flight == 1


def test_each_xdist_worker_dispatches_its_own_tests_concurrently(
    pytester: pytest.Pytester, start_platform: StartPlatform
) -> None:
    # Two workers each running one run at a time never reach three runs at once; the barrier needs 3.
    platform = _barrier_suite(pytester, start_platform, cases=12, need=3)

    result = pytester.runpytest_subprocess(*platform.args("-n", "2", "--scriptum-concurrency=2"))

    result.assert_outcomes(passed=12)
    stats = platform.settled_stats()
    assert 3 <= stats.max_runs_in_flight <= 4  # 2 workers x --scriptum-concurrency=2
    assert stats.runs_started == 12
