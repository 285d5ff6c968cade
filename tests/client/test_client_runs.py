"""run_thread over both transports: pinning, candidate failures, idempotency, cancel, concurrency."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from client_testkit import ClientFactory
from helpers import Platform

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.client import ScriptumError
from pytest_scriptum.client._base import ClientBase


@pytest.mark.parametrize("version", [1, 3])
def test_a_pinned_run_runs_the_pinned_version_not_the_active_one(client: ClientBase, version: int) -> None:
    thread = client.run_thread("echo", version, {"n": 1, "big": 10**20})
    assert (thread.status, thread.script, thread.version) == (pb.SUCCEEDED, "echo", version)
    assert json.loads(thread.output_json) == {"version": version, "echo": {"n": 1, "big": 10**20},
                                              "region": "eu-west-1"}
    assert [step.name for step in thread.steps] == ["echo"]
    assert thread.env_resolved and {"REGION", "MODE", "API_KEY"} <= set(thread.env_keys)
    assert len(thread.request_id) == 32


def test_a_run_without_env_resolution(client: ClientBase) -> None:
    thread = client.run_thread("echo", 2, {}, resolve_env=False)
    assert thread.status == pb.SUCCEEDED and not thread.env_resolved
    assert json.loads(thread.output_json)["region"] is None


def test_a_failed_thread_is_returned_not_raised(client: ClientBase) -> None:
    thread = client.run_thread("echo", 2, {"fail": True})
    assert thread.status == pb.FAILED
    assert "asked to fail" in thread.error
    assert client.get_thread(thread.thread_id).status == pb.FAILED


def test_a_timed_out_thread_is_returned_not_raised(client: ClientBase) -> None:
    thread = client.run_thread("echo", 2, {"sleep_s": 30}, timeout_s=0.5)
    assert thread.status == pb.TIMED_OUT


def test_get_and_cancel_a_finished_thread(client: ClientBase) -> None:
    thread = client.run_thread("echo", 1, [1, 2])
    assert client.get_thread(thread.thread_id) == thread
    assert client.cancel_thread(thread.thread_id).status == pb.SUCCEEDED  # finished: unchanged
    with pytest.raises(ScriptumError) as info:
        client.get_thread("no-such-thread")
    assert info.value.code == "NOT_FOUND"


def test_a_reused_request_id_executes_once(client: ClientBase, admin: Platform) -> None:
    request_id = uuid.uuid4().hex
    first = client.run_thread("echo", 2, {"once": True}, request_id=request_id)
    again = client.run_thread("echo", 2, {"once": True}, request_id=request_id)
    assert again.thread_id == first.thread_id and again.request_id == request_id
    assert admin.stats().runs_started == 1


def test_a_reused_request_id_with_other_arguments_is_refused(client: ClientBase) -> None:
    request_id = uuid.uuid4().hex
    client.run_thread("echo", 2, {"a": 1}, request_id=request_id)
    with pytest.raises(ScriptumError) as info:
        client.run_thread("echo", 2, {"a": 2}, request_id=request_id)
    assert info.value.is_conflict


def test_a_cancel_event_cancels_the_run_in_flight(client: ClientBase, admin: Platform) -> None:
    cancel = threading.Event()
    outcome: list[BaseException | pb.Thread] = []

    def run() -> None:
        try:
            outcome.append(client.run_thread("echo", 2, {"sleep_s": 60}, timeout_s=120, cancel=cancel))
        except BaseException as exc:  # handed to the test thread below
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    admin.wait_for(lambda s: s.runs_in_flight == 1, "the run is in flight")
    cancel.set()
    runner.join(timeout=30)
    assert not runner.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ScriptumError)
    assert (outcome[0].code, outcome[0].method) == ("CANCELLED", "RunThread")
    stats = admin.wait_for(lambda s: s.runs_cancelled == 1 and s.runs_in_flight == 0, "the run is cancelled")
    assert stats.runs_started == 1


def test_a_cancel_event_is_harmless_when_the_run_finishes(client: ClientBase) -> None:
    thread = client.run_thread("echo", 1, {"x": 1}, cancel=threading.Event())
    assert thread.status == pb.SUCCEEDED and json.loads(thread.output_json)["echo"] == {"x": 1}


def test_many_threads_share_one_client(client: ClientBase, admin: Platform) -> None:
    def run(n: int) -> pb.Thread:
        return client.run_thread("echo", 1 + n % 3, {"n": n}, cancel=threading.Event())

    with ThreadPoolExecutor(max_workers=8) as pool:
        threads = list(pool.map(run, range(16)))
    for n, thread in enumerate(threads):
        assert thread.status == pb.SUCCEEDED and thread.version == 1 + n % 3
        assert json.loads(thread.output_json)["echo"] == {"n": n}
    assert len({t.thread_id for t in threads}) == 16
    assert admin.stats().runs_started == 16


def test_bad_input_is_a_value_error(make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(ValueError, match="input of the run of echo v2"):
        client.run_thread("echo", 2, {"x": float("nan")})
