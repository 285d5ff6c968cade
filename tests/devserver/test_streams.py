"""Server streams on both transports: order, completeness, cancellation, chunking of big outputs."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path

import grpc
import httpx
import pytest
from kit import AUTH
from kit.transports import CallError, Transport, create, settle

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc

MiB = 1024 * 1024


def _kind(event: pb.ThreadEvent) -> str:
    return pb.ThreadEventType.Name(event.type).removeprefix("THREAD_EVENT_TYPE_")


def test_watch_thread_events_are_ordered_and_complete(t: Transport) -> None:
    thread_id = create(t, "tools", 1, {"op": "nested"})
    events = list(t.stream("WatchThread", pb.WatchThreadRequest(thread_id=thread_id)))
    sequences = [e.sequence for e in events]
    assert sequences == sorted(set(sequences)) and sequences[0] >= 1
    assert events[0].type == pb.THREAD_EVENT_TYPE_STATUS  # first event: the status at subscription
    assert events[-1].thread.status == pb.THREAD_STATUS_COMPLETED and _kind(events[-1]) == "STATUS"
    steps = [(_kind(e), e.step.path) for e in events if e.type != pb.THREAD_EVENT_TYPE_STATUS]
    full = [
        ("STEP_STARTED", "1"),
        ("STEP_STARTED", "1.0"),
        ("STEP_FINISHED", "1.0"),
        ("STEP_STARTED", "1.1"),
        ("STEP_FINISHED", "1.1"),
        ("STEP_FINISHED", "1"),
        ("STEP_STARTED", "2"),
        ("STEP_FINISHED", "2"),
    ]
    # A subscriber that joined late sees a suffix of the log, never a gap or a reordering.
    assert steps == full[len(full) - len(steps) :]
    assert all(b - a == 1 for a, b in itertools.pairwise(sequences[1:]))
    # A settled thread: one event with its final state, and the stream ends.
    (again,) = t.stream("WatchThread", pb.WatchThreadRequest(thread_id=thread_id))
    assert again.thread.status == pb.THREAD_STATUS_COMPLETED and again.sequence == sequences[-1]


def test_watch_delivers_every_yield_in_order(t: Transport, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    thread_id = create(t, "tools", 1, {"op": "wait_file", "path": str(gate)})
    stream = t.stream("WatchThread", pb.WatchThreadRequest(thread_id=thread_id))
    first = next(stream)
    assert first.thread.status in (pb.THREAD_STATUS_PENDING, pb.THREAD_STATUS_RUNNING)
    gate.touch()
    rest = list(stream)
    assert rest[-1].thread.status == pb.THREAD_STATUS_COMPLETED
    assert [e.sequence for e in rest] == list(range(first.sequence + 1, first.sequence + 1 + len(rest)))

    yield_gate = tmp_path / "yield"
    yielded = create(t, "tools", 1, {"op": "yield", "n": 50, "gate": str(yield_gate)})
    stream = t.stream("WatchThread", pb.WatchThreadRequest(thread_id=yielded))
    next(stream)  # subscribed before the first yield
    yield_gate.touch()
    events = list(stream)
    values = [json.loads(e.yielded_value_json)["i"] for e in events if e.type == pb.THREAD_EVENT_TYPE_YIELD]
    assert values == list(range(50))
    result = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=yielded))
    assert [json.loads(v)["i"] for v in result.yielded_values] == list(range(50))


def test_grpc_watch_cancelled_by_the_client_leaves_the_thread_running(
    stub: pb_grpc.ScriptumServiceStub, tmp_path: Path
) -> None:
    gate = tmp_path / "go"
    thread_id = stub.CreateThread(
        pb.CreateThreadRequest(
            script_name="tools", version=1, input_json=json.dumps({"op": "wait_file", "path": str(gate)})
        ),
        metadata=AUTH,
    ).thread_id
    call = stub.WatchThread(pb.WatchThreadRequest(thread_id=thread_id), metadata=AUTH)
    first = next(call)
    assert first.thread.status in (pb.THREAD_STATUS_PENDING, pb.THREAD_STATUS_RUNNING)
    call.cancel()
    with pytest.raises(grpc.RpcError) as exc:
        next(call)
    assert exc.value.code() == grpc.StatusCode.CANCELLED  # type: ignore[attr-defined]
    gate.touch()
    events = list(stub.WatchThread(pb.WatchThreadRequest(thread_id=thread_id), metadata=AUTH))
    assert events[-1].thread.status == pb.THREAD_STATUS_COMPLETED


def test_http_watch_closed_by_the_client_leaves_the_thread_running(
    http: httpx.Client, tmp_path: Path
) -> None:
    gate = tmp_path / "go"
    body = {
        "scriptName": "tools",
        "version": 1,
        "inputJson": json.dumps({"op": "wait_file", "path": str(gate)}),
    }
    thread_id = http.post("/v1/scriptum/threads", json=body).json()["threadId"]
    with http.stream("GET", f"/v1/scriptum/threads/{thread_id}/watch") as response:
        first = json.loads(next(response.iter_lines()))
        assert first["result"]["thread"]["status"] in ("THREAD_STATUS_PENDING", "THREAD_STATUS_RUNNING")
    gate.touch()
    with http.stream("GET", f"/v1/scriptum/threads/{thread_id}/watch") as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines[-1]["result"]["thread"]["status"] == "THREAD_STATUS_COMPLETED"
    assert [int(x["result"]["sequence"]) for x in lines] == sorted(
        int(x["result"]["sequence"]) for x in lines
    )


def test_watch_step_follows_one_step(t: Transport, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    thread_id = create(t, "tools", 1, {"op": "wait_file", "path": str(gate)})
    stream = t.stream("WatchStep", pb.WatchStepRequest(thread_id=thread_id, step_path="1"))
    started = next(stream)
    assert (started.type, started.step.path, started.step.name) == (
        pb.THREAD_EVENT_TYPE_STEP_STARTED,
        "1",
        "waiting",
    )
    assert started.thread_id == thread_id and started.step.status == pb.STEP_STATUS_RUNNING
    gate.touch()
    (finished,) = list(stream)
    assert (finished.type, finished.step.status) == (
        pb.THREAD_EVENT_TYPE_STEP_FINISHED,
        pb.STEP_STATUS_COMPLETED,
    )
    settle(t, thread_id)
    (after,) = t.stream("WatchStep", pb.WatchStepRequest(thread_id=thread_id, step_path="1"))
    assert after.step.status == pb.STEP_STATUS_COMPLETED
    with pytest.raises(CallError) as exc:
        list(t.stream("WatchStep", pb.WatchStepRequest(thread_id=thread_id, step_path="7")))
    assert exc.value.status == "NOT_FOUND" and "'7'" in exc.value.message


def test_a_10_mib_output_arrives_whole_through_the_stream(t: Transport) -> None:
    size = 10 * MiB
    thread = settle(t, create(t, "tools", 1, {"op": "big", "bytes": size}))
    assert thread.status == pb.THREAD_STATUS_COMPLETED, thread.error
    unary = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=thread.thread_id))
    assert unary.output_truncated and len(unary.output_data) == 4 * MiB
    total = unary.output_total_bytes
    assert total == len(json.dumps({"blob": "x" * size}))
    messages = list(t.stream("StreamThreadResult", pb.StreamThreadResultRequest(thread_id=thread.thread_id)))
    meta = messages[0].meta
    assert messages[0].WhichOneof("payload") == "meta"
    assert (meta.thread_id, meta.status, meta.output_total_bytes, meta.chunk_count) == (
        thread.thread_id,
        pb.THREAD_STATUS_COMPLETED,
        total,
        math.ceil(total / (2 * MiB)),
    )
    chunks = [m.chunk for m in messages[1:]]
    assert [c.chunk_index for c in chunks] == list(range(meta.chunk_count))
    assert [c.is_final for c in chunks] == [False] * (len(chunks) - 1) + [True]
    data = b"".join(c.data for c in chunks)
    assert len(data) == total and data.startswith(unary.output_data)
    assert hashlib.sha256(data).hexdigest() == meta.output_sha256
    assert json.loads(data) == {"blob": "x" * size}


@pytest.mark.parametrize(
    ("asked", "expected"), [(1, 64 * 1024), (0, 2 * MiB), (3 * MiB, 3 * MiB), (1 << 30, 16 * MiB)]
)
def test_max_chunk_bytes_is_clamped(t: Transport, asked: int, expected: int) -> None:
    if t.name == "http" and expected > 2 * MiB:
        pytest.skip("large chunks are exercised over gRPC; one HTTP line per 16 MiB is slow to parse")
    thread = settle(t, create(t, "tools", 1, {"op": "big", "bytes": 17 * MiB // 2}))
    messages = list(
        t.stream(
            "StreamThreadResult",
            pb.StreamThreadResultRequest(thread_id=thread.thread_id, max_chunk_bytes=asked),
        )
    )
    sizes = [len(m.chunk.data) for m in messages[1:]]
    assert sizes[:-1] == [expected] * (len(sizes) - 1) and 0 < sizes[-1] <= expected
    assert (
        messages[0].meta.chunk_count
        == len(sizes)
        == math.ceil(messages[0].meta.output_total_bytes / expected)
    )


def test_empty_output_streams_one_final_chunk(t: Transport) -> None:
    thread = settle(t, create(t, "tools", 1, {"op": "fail"}))
    meta, chunk = t.stream("StreamThreadResult", pb.StreamThreadResultRequest(thread_id=thread.thread_id))
    assert (meta.meta.status, meta.meta.output_total_bytes, meta.meta.chunk_count) == (
        pb.THREAD_STATUS_FAILED,
        0,
        1,
    )
    assert (chunk.chunk.chunk_index, chunk.chunk.data, chunk.chunk.is_final) == (0, b"", True)


def test_stream_step_result(t: Transport) -> None:
    thread = settle(t, create(t, "tools", 1, {"op": "steps"}))
    messages = list(t.stream("StreamStepResult", pb.StreamStepResultRequest(thread_id=thread.thread_id)))
    kinds = [(m.step_path, m.WhichOneof("payload")) for m in messages]
    assert kinds == [(p, k) for p in ("1", "1.0", "1.1", "1.1.0", "2") for k in ("detail", "chunk")]
    details = {m.step_path: m.detail for m in messages if m.WhichOneof("payload") == "detail"}
    assert details["1"].logs == ["parsing"] and details["1.0"].output_json == ""  # output follows in chunks
    chunk = next(m.chunk for m in messages if m.step_path == "1.0" and m.WhichOneof("payload") == "chunk")
    assert json.loads(chunk.data) == {"tokens": 3} and chunk.is_final
    one = list(
        t.stream("StreamStepResult", pb.StreamStepResultRequest(thread_id=thread.thread_id, step_path="2"))
    )
    assert [m.step_path for m in one] == ["2", "2"] and "step failed" in one[0].detail.summary.error
    with pytest.raises(CallError) as exc:
        list(
            t.stream(
                "StreamStepResult", pb.StreamStepResultRequest(thread_id=thread.thread_id, step_path="9")
            )
        )
    assert exc.value.status == "NOT_FOUND"
