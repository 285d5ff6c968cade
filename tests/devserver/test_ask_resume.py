"""context.ask pauses a thread; ResumeThread answers it (checked against the ask), on both
transports and across a server restart."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from kit import AUTH, ORG, TOKEN
from kit.constants import CHANNEL_OPTIONS
from kit.seeds import DEVSERVER_SEED as SEED
from kit.transports import CallError, GrpcTransport, Transport, create, settle

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.devserver import DevServer


def _resume(t: Transport, thread_id: str, answer: str) -> pb.Thread:
    thread: pb.Thread = t.call(
        "ResumeThread", pb.ResumeThreadRequest(thread_id=thread_id, step_input_override_json=answer)
    )
    return thread


def test_ask_pauses_and_resume_completes(t: Transport) -> None:
    thread_id = create(t, "tools", 1, {"op": "ask"})
    events = list(t.stream("WatchThread", pb.WatchThreadRequest(thread_id=thread_id)))
    paused = events[-1].thread
    assert paused.status == pb.THREAD_STATUS_PAUSED and paused.error_code == "" and paused.finished_at_ms == 0
    ask = paused.pending_ask
    assert (ask.step_path, ask.label, ask.prompt, ask.type, list(ask.options)) == (
        "2",
        "Approve",
        "Approve it?",
        "text",
        ["approve", "reject"],
    )
    assert t.call("GetThread", pb.GetThreadRequest(thread_id=thread_id)).pending_ask == ask
    steps = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=thread_id)).steps
    assert [(s.path, s.primitive, s.status) for s in steps] == [
        ("1", "execute", pb.STEP_STATUS_COMPLETED),
        ("2", "ask", pb.STEP_STATUS_PAUSED),
    ]

    resumed = _resume(t, thread_id, '{"value":"approve","comment":"looks right"}')
    assert resumed.status in (pb.THREAD_STATUS_PENDING, pb.THREAD_STATUS_RUNNING, pb.THREAD_STATUS_COMPLETED)
    assert not resumed.HasField("pending_ask")
    after = list(t.stream("WatchThread", pb.WatchThreadRequest(thread_id=thread_id)))
    assert after[-1].thread.status == pb.THREAD_STATUS_COMPLETED
    assert after[0].sequence >= events[-1].sequence  # the sequence goes on across the pause
    result = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=thread_id, step_path="2"))
    assert json.loads(result.output_data) == {"decision": "approve"}
    # The replay does not duplicate the steps before the ask; the ask step records the answer.
    assert [(s.path, s.name, s.status) for s in result.steps] == [
        ("1", "prepare", pb.STEP_STATUS_COMPLETED),
        ("2", "Approve", pb.STEP_STATUS_COMPLETED),
        ("3", "finish", pb.STEP_STATUS_COMPLETED),
    ]
    assert json.loads(result.step_details[0].output_json) == {"value": "approve", "comment": "looks right"}
    with pytest.raises(CallError) as exc:
        _resume(t, thread_id, '"approve"')
    assert exc.value.status == "FAILED_PRECONDITION" and "COMPLETED, not PAUSED" in exc.value.message


@pytest.mark.parametrize(
    ("answer", "needle"),
    [
        ('"maybe"', "not one of the options of ask 'Approve': approve, reject"),
        ('{"value": 3}', "expects a text value, got 3"),
        ("{nope", "not valid JSON"),
        ("", "step_input_override_json is required"),
    ],
)
def test_answers_are_checked_against_the_ask(t: Transport, answer: str, needle: str) -> None:
    thread_id = create(t, "tools", 1, {"op": "ask"})
    settle(t, thread_id)
    with pytest.raises(CallError) as exc:
        _resume(t, thread_id, answer)
    assert exc.value.status == "INVALID_ARGUMENT" and needle in exc.value.message
    assert t.call("GetThread", pb.GetThreadRequest(thread_id=thread_id)).status == pb.THREAD_STATUS_PAUSED
    assert _resume(t, thread_id, '"reject"').thread_id == thread_id  # a bare value is an answer too
    assert settle(t, thread_id).status == pb.THREAD_STATUS_COMPLETED


def test_several_asks_number_and_boolean(t: Transport) -> None:
    thread_id = create(t, "tools", 1, {"op": "ask2"})
    assert settle(t, thread_id).pending_ask.type == "number"
    with pytest.raises(CallError):
        _resume(t, thread_id, "true")  # a boolean is not a number
    _resume(t, thread_id, '{"value": 12.5}')
    second = settle(t, thread_id)
    assert (second.status, second.pending_ask.label, second.pending_ask.type) == (
        pb.THREAD_STATUS_PAUSED,
        "Sure",
        "boolean",
    )
    with pytest.raises(CallError):
        _resume(t, thread_id, '"yes"')
    _resume(t, thread_id, "true")
    assert settle(t, thread_id).status == pb.THREAD_STATUS_COMPLETED
    result = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=thread_id))
    assert json.loads(result.output_data) == {"amount": 12.5, "sure": True}


def test_resume_of_a_running_thread_is_a_precondition_error(t: Transport, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    thread_id = create(t, "tools", 1, {"op": "wait_file", "path": str(gate)})
    with pytest.raises(CallError) as exc:
        _resume(t, thread_id, '"x"')
    assert exc.value.status == "FAILED_PRECONDITION" and "not PAUSED" in exc.value.message
    gate.touch()
    settle(t, thread_id)


def test_a_paused_thread_survives_a_restart_and_resumes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with DevServer(data_dir=data, seed=SEED, principals={TOKEN: ORG}) as first:
        with grpc.insecure_channel(first.addresses.grpc, options=CHANNEL_OPTIONS) as channel:
            t = GrpcTransport(channel, AUTH)
            thread_id = create(t, "tools", 1, {"op": "ask"})
            assert settle(t, thread_id).status == pb.THREAD_STATUS_PAUSED
    with DevServer(data_dir=data, seed=SEED, principals={TOKEN: ORG}) as second:
        with grpc.insecure_channel(second.addresses.grpc, options=CHANNEL_OPTIONS) as channel:
            t = GrpcTransport(channel, AUTH)
            again = t.call("GetThread", pb.GetThreadRequest(thread_id=thread_id))
            assert again.status == pb.THREAD_STATUS_PAUSED and again.pending_ask.label == "Approve"
            _resume(t, thread_id, '{"value": "approve"}')
            assert settle(t, thread_id).status == pb.THREAD_STATUS_COMPLETED
