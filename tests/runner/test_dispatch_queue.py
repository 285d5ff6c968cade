"""Issue 18 (memory): the dispatcher gives the pool only the runs it can start; the rest wait as
requests in its queue, in order, and are still run, taken and cancelled as before."""

from __future__ import annotations

import concurrent.futures
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit.constants import ORG, TOKEN
from kit.seeds.svc import CANDIDATE, SCRIPT, StartPlatform

from pytest_scriptum.client import ClientSettings, connect
from pytest_scriptum.runner import Dispatcher, PinnedRunner, RunCancelledError, RunRequest

RUNS = 40
POOL = 2  # a fixed limit: the pool has this many workers

# Holds every run until the test creates the release file (gives up after 30 s and says so).
GATE = """
import os
import time

def handler(event, context):
    deadline = time.monotonic() + 30.0
    while not os.path.exists({release!r}):
        if time.monotonic() > deadline:
            return {{"id": event["id"], "released": False}}
        time.sleep(0.01)
    return {{"id": event["id"], "released": True}}
"""


def _pool_work(dispatcher: Dispatcher) -> int:
    """The dispatcher's work items alive in its pool (queued or running): each holds a future."""
    gc.collect()
    return sum(
        isinstance(o, concurrent.futures.thread._WorkItem) and getattr(o.fn, "__self__", None) is dispatcher
        for o in gc.get_objects()
    )


@pytest.fixture
def held(start_platform: StartPlatform, tmp_path: Path) -> Iterator[tuple[Dispatcher, Path]]:
    release = tmp_path / "release"
    source = GATE.format(release=str(release))
    platform = start_platform({1: source, CANDIDATE: source})
    client = connect(ClientSettings(endpoint=platform.grpc, http_url=platform.http, org=ORG, token=TOKEN))
    dispatcher = Dispatcher(PinnedRunner(client, version=CANDIDATE, script=SCRIPT, timeout=60.0), POOL)
    try:
        yield dispatcher, release
    finally:
        release.touch()
        dispatcher.close()
        client.close()


def test_only_the_runs_the_pool_can_start_get_a_future(held: tuple[Dispatcher, Path]) -> None:
    dispatcher, release = held
    dispatcher.submit_all((f"case{i}", RunRequest(input={"id": i})) for i in range(RUNS))
    # The first POOL runs are held on the platform: nothing has finished, so nothing more started
    # (before issue 18's memory work the pool held all RUNS work items and futures at once).
    assert _pool_work(dispatcher) == POOL
    assert all(dispatcher.dispatched(f"case{i}") for i in range(RUNS))
    release.touch()
    for i in range(RUNS):  # every queued run still ran, in its turn, and lands on its own key
        result = dispatcher.result(f"case{i}")
        assert result.output == {"id": i, "released": True}
        assert result.status == "COMPLETED"
    with pytest.raises(KeyError):  # handed out once, as before
        dispatcher.result("case0")


def test_cancel_reaches_queued_and_started_runs(held: tuple[Dispatcher, Path]) -> None:
    dispatcher, release = held
    dispatcher.submit_all((f"case{i}", RunRequest(input={"id": i})) for i in range(RUNS))
    assert dispatcher.cancel_outstanding() == RUNS  # POOL held on the platform, the rest queued
    for i in range(RUNS):
        with pytest.raises(RunCancelledError):
            dispatcher.result(f"case{i}")
        assert dispatcher.dispatched(f"case{i}")
    dispatcher.submit("case0", RunRequest(input={"id": 0}))  # idempotent: a cancelled key stays cancelled
    with pytest.raises(RunCancelledError):
        dispatcher.result("case0")
    # A run submitted after the cancel belongs to a new round: it runs.
    dispatcher.submit("later", RunRequest(input={"id": RUNS}))
    release.touch()
    assert dispatcher.result("later").output == {"id": RUNS, "released": True}
