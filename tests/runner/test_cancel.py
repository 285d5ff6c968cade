"""-x and --scriptum-fail-fast stop outstanding runs; fail-fast rolls back without waiting for them."""

from __future__ import annotations

import pytest
from kit import Platform
from kit.seeds.svc import CANDIDATE, CASES_TEST, StartPlatform, write_cases

from pytest_scriptum._proto import scriptum_pb2 as pb

CASES = 12
# Fewer than CASES in flight, so some runs are still queued when the first result fails (the
# adaptive default would have all 12 accepted by a platform that keeps up).
LIMIT = "--scriptum-concurrency=8"

# Case 0 answers wrongly at once; every other case waits for a release file that never comes
# (up to 20 s, then answers correctly): they finish early only if they are cancelled.
CANDIDATE_SOURCE = """
import os
import time

def handler(event, context):
    if event["id"] == 0:
        return {{"id": -1}}
    deadline = time.monotonic() + 20.0
    while not os.path.exists({release!r}) and time.monotonic() < deadline:
        time.sleep(0.01)
    return {{"id": event["id"]}}
"""

GOOD_SOURCE = """
def handler(event, context):
    return {"id": event["id"]}
"""


def _blocked_suite(pytester: pytest.Pytester, start_platform: StartPlatform) -> Platform:
    platform = start_platform(
        {1: GOOD_SOURCE, 2: CANDIDATE_SOURCE.format(release=str(pytester.path / "release"))}
    )
    write_cases(pytester.path / "cases", [{"id": i} for i in range(CASES)], [{"id": i} for i in range(CASES)])
    pytester.makepyfile(test_blocked=CASES_TEST)
    return platform


def test_exitfirst_cancels_outstanding_runs(pytester: pytest.Pytester, start_platform: StartPlatform) -> None:
    platform = _blocked_suite(pytester, start_platform)

    result = pytester.runpytest(*platform.args("-x", "--scriptum-rollback=off", LIMIT))

    result.assert_outcomes(failed=1)
    stats = platform.settled_stats()
    assert stats.runs_started < CASES  # queued runs were never sent
    assert stats.runs_cancelled >= 1  # runs in flight were cancelled on the platform
    assert stats.runs_cancelled == stats.runs_started - 1  # every run but the failing one
    assert platform.rollbacks_in_history() == []


def test_fail_fast_rolls_back_without_waiting_for_outstanding_runs(
    pytester: pytest.Pytester, start_platform: StartPlatform
) -> None:
    platform = _blocked_suite(pytester, start_platform)

    result = pytester.runpytest(*platform.args("--scriptum-fail-fast", "--scriptum-incident=INC-7", LIMIT))

    # Only the failing case ran; nothing waited for the blocked runs to finish.
    result.assert_outcomes(failed=1)
    assert result.ret == 1  # gate failed, rolled back and verified
    last = platform.history()[-1]
    assert (last.kind, last.from_version, last.version, last.incident_id) == (
        pb.ACTIVATION_KIND_ROLLBACK,
        CANDIDATE,
        1,
        "INC-7",
    )
    stats = platform.settled_stats()
    assert stats.rollbacks_applied == 1
    assert stats.runs_cancelled >= 1
    # The verification re-run on v1 runs all cases; the candidate got fewer than all of them started.
    assert stats.runs_started - CASES < CASES
