"""Runs over both transports: pinning, candidate failures, steps, ask/resume, drafts, idempotency,
cancel, concurrency and a 10 MiB output, against the embedded server."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from kit import Platform as Admin
from kit.scripted import ClientFactory

from pytest_scriptum.client import RunRecord, ScriptumError
from pytest_scriptum.client._base import ClientBase


def output_of(run: RunRecord) -> object:
    assert run.output is not None
    return json.loads(run.output.output_data)


@pytest.mark.parametrize("version", [1, 3])
def test_a_pinned_run_runs_the_pinned_version_not_the_active_one(client: ClientBase, version: int) -> None:
    run = client.run_thread("echo", version, {"n": 1, "big": 10**20})
    thread = run.thread
    assert (thread.status, thread.script_name, thread.version, thread.error_code) == (
        "COMPLETED",
        "echo",
        version,
        "",
    )
    assert output_of(run) == {"version": version, "echo": {"n": 1, "big": 10**20}, "region": "eu-west-1"}
    assert run.output is not None and [(s.path, s.name, s.status) for s in run.output.steps] == [
        ("1", "echo", "COMPLETED")
    ]
    assert thread.load_env and {"REGION", "MODE", "API_KEY"} <= set(thread.env_keys)
    assert len(thread.metadata["scriptum.request_id"]) == 32
    assert thread.finished_at_ms >= thread.started_at_ms >= thread.created_at_ms > 0


def test_a_run_without_env(client: ClientBase) -> None:
    run = client.run_thread("echo", 2, {}, load_env=False)
    assert run.thread.status == "COMPLETED" and not run.thread.load_env and run.thread.env_keys == ()
    assert output_of(run) == {"version": 2, "echo": {}, "region": None}


def test_nested_steps_have_hierarchical_paths(client: ClientBase) -> None:
    run = client.run_thread("echo", 3, {"nested": True})
    assert run.output is not None
    assert [(s.path, s.name) for s in run.output.steps] == [
        ("1", "outer"),
        ("1.0", "inner-a"),
        ("1.1", "inner-b"),
        ("2", "last"),
    ]


def test_a_failed_thread_is_returned_not_raised(client: ClientBase) -> None:
    run = client.run_thread("echo", 2, {"fail": True})
    assert (run.thread.status, run.thread.error_code, run.thread.platform_fault) == (
        "FAILED",
        "SCRIPT_ERROR",
        False,
    )
    assert "asked to fail" in run.thread.error
    assert run.output is not None and run.output.steps[0].status == "FAILED"
    assert client.get_thread(run.thread.thread_id).status == "FAILED"


def test_a_thread_past_its_timeout_fails_as_the_scripts_own(client: ClientBase) -> None:
    run = client.run_thread("echo", 2, {"sleep_s": 30}, timeout_s=0.5)
    assert (run.thread.status, run.thread.error_code, run.thread.platform_fault) == (
        "FAILED",
        "SCRIPT_DEADLINE",
        False,
    )


def test_a_platform_failure_is_marked_as_the_platforms(client: ClientBase, admin: Admin) -> None:
    admin.set_faults(platform_failure="PLATFORM_CAPACITY")
    run = client.run_thread("echo", 2, {})
    assert (run.thread.status, run.thread.error_code, run.thread.platform_fault) == (
        "FAILED",
        "PLATFORM_CAPACITY",
        True,
    )


def test_a_paused_thread_is_returned_and_resumed(client: ClientBase) -> None:
    run = client.run_thread("echo", 2, {"ask": True})
    thread = run.thread
    assert thread.status == "PAUSED" and not thread.terminal and thread.settled
    assert thread.pending_ask is not None
    assert (thread.pending_ask.label, thread.pending_ask.options) == ("approve", ("yes", "no"))
    resumed = client.resume_thread(thread.thread_id, {"value": "yes"})
    assert resumed.thread_id == thread.thread_id and resumed.status in ("PENDING", "RUNNING", "COMPLETED")
    done = client.watch_thread(thread.thread_id, timeout_s=30)
    assert done.status == "COMPLETED" and done.pending_ask is None
    assert json.loads(client.get_thread_result(thread.thread_id).output_data)["region"] == "yes"


def test_a_draft_run(client: ClientBase) -> None:
    name = f"t-{uuid.uuid4().hex[:12]}"
    client.create_script(name)
    client.save_script_draft(name, dsl_content="def handler(event, context):\n    return {'draft': event}\n")
    client.compile_script_draft(name)
    run = client.run_thread(name, 0, {"x": 1}, draft=True)
    assert (run.thread.status, run.thread.draft) == ("COMPLETED", True)
    assert output_of(run) == {"draft": {"x": 1}}
    assert client.get_script(name).latest_version == 0  # nothing was published


def test_a_10_mib_output_arrives_whole_through_the_stream(client: ClientBase) -> None:
    run = client.run_thread("echo", 3, {"big_mib": 10}, timeout_s=120)
    assert run.thread.status == "COMPLETED" and run.output is not None
    data = run.output.output_data
    expected = json.dumps({"version": 3, "blob": "x" * 10 * 1024 * 1024}, separators=(",", ":")).encode()
    assert run.output.streamed and len(data) == run.output.output_total_bytes > 10 * 1024 * 1024
    assert json.loads(data) == json.loads(expected)
    assert (
        hashlib.sha256(data).hexdigest()
        == hashlib.sha256(client.get_thread_result(run.thread.thread_id).output_data).hexdigest()
    )


def test_a_small_output_is_not_streamed(client: ClientBase) -> None:
    run = client.run_thread("echo", 3, {"big_mib": 1}, timeout_s=60)
    assert run.output is not None and not run.output.streamed
    assert len(run.output.output_data) == run.output.output_total_bytes > 1024 * 1024


def test_get_list_and_cancel_a_finished_thread(client: ClientBase) -> None:
    run = client.run_thread("echo", 1, [1, 2])
    thread_id = run.thread.thread_id
    assert client.get_thread(thread_id) == run.thread
    assert client.cancel_thread(thread_id).status == "COMPLETED"  # settled: unchanged
    listed = client.list_threads(script_name="echo", status="COMPLETED")
    assert thread_id in [t.thread_id for t in listed]
    assert all(t.status == "COMPLETED" and t.script_name == "echo" for t in listed)
    assert thread_id not in [t.thread_id for t in client.list_threads(status="FAILED")]
    with pytest.raises(ScriptumError) as info:
        client.get_thread("thr_no_such_thread")
    assert info.value.code == "NOT_FOUND"


def test_a_reused_request_id_executes_once(client: ClientBase, admin: Admin) -> None:
    request_id = uuid.uuid4().hex
    first = client.create_thread("echo", 2, {"once": True}, request_id=request_id)
    again = client.create_thread("echo", 2, {"once": True}, request_id=request_id)
    assert again == first
    assert client.watch_thread(first, timeout_s=30).metadata["scriptum.request_id"] == request_id
    assert admin.stats().runs_started == 1


def test_a_reused_request_id_with_other_arguments_is_refused(client: ClientBase) -> None:
    request_id = uuid.uuid4().hex
    client.create_thread("echo", 2, {"a": 1}, request_id=request_id)
    with pytest.raises(ScriptumError) as info:
        client.create_thread("echo", 2, {"a": 2}, request_id=request_id)
    assert info.value.is_conflict


def test_a_cancel_event_cancels_the_run_in_flight(client: ClientBase, admin: Admin) -> None:
    cancel = threading.Event()
    outcome: list[BaseException | RunRecord] = []

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
    assert outcome[0].code == "CANCELLED" and "cancelled" in outcome[0].message
    stats = admin.wait_for(lambda s: s.runs_cancelled == 1 and s.runs_in_flight == 0, "the run is cancelled")
    assert stats.runs_started == 1
    thread = client.list_threads(script_name="echo", status="CANCELLED")[0]
    assert thread.error_code == "CANCELLED_BY_CALLER"


def test_a_cancel_event_is_harmless_when_the_run_finishes(client: ClientBase) -> None:
    run = client.run_thread("echo", 1, {"x": 1}, cancel=threading.Event())
    assert run.thread.status == "COMPLETED" and output_of(run) == {
        "version": 1,
        "echo": {"x": 1},
        "region": "eu-west-1",
    }


def test_many_threads_share_one_client(client: ClientBase, admin: Admin) -> None:
    def run(n: int) -> RunRecord:
        return client.run_thread("echo", 1 + n % 3, {"n": n}, cancel=threading.Event())

    with ThreadPoolExecutor(max_workers=8) as pool:
        runs = list(pool.map(run, range(16)))
    for n, record in enumerate(runs):
        assert record.thread.status == "COMPLETED" and record.thread.version == 1 + n % 3
        assert output_of(record) == {"version": 1 + n % 3, "echo": {"n": n}, "region": "eu-west-1"}
    assert len({r.thread.thread_id for r in runs}) == 16
    assert admin.stats().runs_started == 16


def test_bad_input_is_a_value_error(make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(ValueError, match="input of the run of echo v2"):
        client.run_thread("echo", 2, {"x": float("nan")})
