"""gRPC streams and retries against a scripted server: what the embedded server never does on its
own (a stream that drops mid-way, a broken chunk sequence, a first attempt lost in transit)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from kit.scripted import ScriptedGrpcServer, settings_for

from pytest_scriptum.client import GrpcClient, ScriptumError


def _thread(status: str) -> dict[str, Any]:
    return {"thread_id": "thr_1", "status": f"THREAD_STATUS_{status}", "script_name": "inv", "version": 2}


def test_create_thread_retries_carry_the_same_request_id() -> None:
    attempts: list[int] = []

    def create(request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) < 3:
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        return {"thread_id": "thr_1"}

    with (
        ScriptedGrpcServer({"CreateThread": create}) as server,
        GrpcClient(settings_for(server.target, None)) as client,
    ):
        assert client.create_thread("inv", 2, {"a": 1}) == "thr_1"
    sent = server.requests["CreateThread"]
    assert len(sent) == 3 and sent[0] == sent[1] == sent[2]
    assert len(sent[0]["metadata"]["scriptum.request_id"]) == 32


def test_a_stream_that_drops_mid_way_is_subscribed_again() -> None:
    subscriptions: list[int] = []

    def watch(request: dict[str, Any], context: grpc.ServicerContext) -> Iterator[dict[str, Any]]:
        subscriptions.append(1)
        yield {"thread": _thread("RUNNING")}
        if len(subscriptions) == 1:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the pod went away")
        if len(subscriptions) == 2:
            return  # ends without a settled thread
        yield {"thread": _thread("COMPLETED")}

    with (
        ScriptedGrpcServer({"WatchThread": watch}) as server,
        GrpcClient(settings_for(server.target, None)) as client,
    ):
        assert client.watch_thread("thr_1", timeout_s=30).status == "COMPLETED"
    assert len(subscriptions) == 3


def test_a_stream_that_keeps_dropping_gives_up() -> None:
    def watch(request: dict[str, Any], context: grpc.ServicerContext) -> Iterator[dict[str, Any]]:
        context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        yield {}

    with (
        ScriptedGrpcServer({"WatchThread": watch}) as server,
        GrpcClient(settings_for(server.target, None)) as client,
        pytest.raises(ScriptumError) as info,
    ):
        client.watch_thread("thr_1", timeout_s=30)
    assert (info.value.code, info.value.method) == ("UNAVAILABLE", "WatchThread")
    assert "gave up after 3 attempts" in info.value.message


def test_a_server_without_watch_thread_is_polled() -> None:
    polls: list[int] = []

    def get(request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        polls.append(1)
        return _thread("COMPLETED" if len(polls) >= 3 else "RUNNING")

    with (
        ScriptedGrpcServer({"GetThread": get}) as server,
        GrpcClient(settings_for(server.target, None)) as client,
    ):
        assert client.watch_thread("thr_1", timeout_s=30).status == "COMPLETED"
    assert len(polls) == 3


def _result_server(chunks: list[dict[str, Any]], total: int, **meta: Any) -> ScriptedGrpcServer:
    def result(request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        return {"output_total_bytes": total, "output_truncated": True}

    def stream(request: dict[str, Any], context: grpc.ServicerContext) -> Iterator[dict[str, Any]]:
        yield {"meta": {"thread_id": "thr_1", "output_total_bytes": total, **meta}}
        for chunk in chunks:
            yield {"chunk": chunk}

    return ScriptedGrpcServer({"GetThreadResult": result, "StreamThreadResult": stream})


def _chunk(index: int, data: bytes, final: bool = False) -> dict[str, Any]:
    return {"chunk_index": index, "data": base64.b64encode(data).decode(), "is_final": final}


@pytest.mark.parametrize(
    ("chunks", "total", "meta", "message"),
    [
        ([_chunk(0, b"ab"), _chunk(0, b"ab"), _chunk(1, b"cd", True)], 6, {}, "chunk 0 arrived twice"),
        ([_chunk(0, b"ab"), _chunk(2, b"cd", True)], 4, {}, "chunk 1 is missing"),
        ([_chunk(0, b"ab"), _chunk(1, b"cd")], 4, {}, "not marked final"),
        ([_chunk(0, b"ab"), _chunk(1, b"cd", True)], 5, {}, "output_total_bytes=5"),
        ([_chunk(0, b"ab"), _chunk(1, b"cd", True)], 4, {"chunk_count": 3}, "announced 3"),
        ([_chunk(0, b"ab"), _chunk(1, b"cd", True)], 4, {"output_sha256": "0" * 64}, "SHA-256"),
    ],
)
def test_an_incomplete_stream_is_data_loss(
    chunks: list[dict[str, Any]], total: int, meta: dict[str, Any], message: str
) -> None:
    with (
        _result_server(chunks, total, **meta) as server,
        GrpcClient(settings_for(server.target, None)) as client,
        pytest.raises(ScriptumError) as info,
    ):
        client.get_thread_result("thr_1")
    assert (info.value.code, info.value.method) == ("DATA_LOSS", "StreamThreadResult")
    assert message in info.value.message


def test_a_complete_stream_with_digest_is_accepted() -> None:
    import hashlib

    data = b"abcd"
    chunks = [_chunk(1, b"cd", True), _chunk(0, b"ab")]
    with (
        _result_server(chunks, 4, chunk_count=2, output_sha256=hashlib.sha256(data).hexdigest()) as server,
        GrpcClient(settings_for(server.target, None)) as client,
    ):
        output = client.get_thread_result("thr_1")
    assert (output.output_data, output.streamed, output.output_total_bytes) == (data, True, 4)


def test_a_cancel_event_aborts_a_silent_watch_and_cancels_the_thread() -> None:
    opened = threading.Event()
    released = threading.Event()

    def watch(request: dict[str, Any], context: grpc.ServicerContext) -> Iterator[dict[str, Any]]:
        yield {"thread": _thread("RUNNING")}
        opened.set()
        released.wait(30)  # silent until the test ends

    def cancel_thread(request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        return _thread("CANCELLED")

    cancel = threading.Event()
    outcome: list[BaseException] = []
    with (
        ScriptedGrpcServer({"WatchThread": watch, "CancelThread": cancel_thread}) as server,
        GrpcClient(settings_for(server.target, None)) as client,
    ):

        def run() -> None:
            try:
                client.watch_thread("thr_1", timeout_s=60, cancel=cancel)
            except BaseException as exc:  # handed to the test thread below
                outcome.append(exc)

        watcher = threading.Thread(target=run)
        watcher.start()
        try:
            assert opened.wait(10)
            cancel.set()
            watcher.join(timeout=10)
            assert not watcher.is_alive()
        finally:
            released.set()
    assert len(outcome) == 1 and isinstance(outcome[0], ScriptumError)
    assert outcome[0].code == "CANCELLED" and "thr_1 cancelled" in outcome[0].message
    assert server.requests["CancelThread"] == [{"thread_id": "thr_1"}]


def test_a_stream_that_always_ends_early_is_replaced_by_polling() -> None:
    # WatchThread is documented as "Partial": a server may send the current state and stop.
    polls: list[int] = []

    def watch(request: dict[str, Any], context: grpc.ServicerContext) -> Iterator[dict[str, Any]]:
        yield {"thread": _thread("RUNNING")}

    def get(request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        polls.append(1)
        return _thread("COMPLETED" if len(polls) >= 2 else "RUNNING")

    with (
        ScriptedGrpcServer({"WatchThread": watch, "GetThread": get}) as server,
        GrpcClient(settings_for(server.target, None)) as client,
    ):
        assert client.watch_thread("thr_1", timeout_s=30).status == "COMPLETED"
    assert len(server.calls("WatchThread")) == 3 and len(polls) == 2


def test_a_retry_info_hint_is_honoured_and_reported_as_pushback() -> None:
    # A Google-style platform sends the hint only as google.rpc.RetryInfo in the rich status.
    attempts: list[int] = []

    def create(request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            delay = duration_pb2.Duration(seconds=2, nanos=500_000_000)
            detail = any_pb2.Any()
            detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
            status = status_pb2.Status(code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], message="busy")
            status.details.append(detail)
            context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")
        return {"thread_id": "thr_1"}

    sleeps: list[float] = []
    pushbacks: list[ScriptumError] = []
    order: list[str] = []  # on_retry comes after the wait, before the attempt it precedes

    def sleep(delay_s: float) -> None:
        sleeps.append(delay_s)
        order.append(f"wait {delay_s}")

    with (
        ScriptedGrpcServer({"CreateThread": create}) as server,
        GrpcClient(settings_for(server.target, None), sleep=sleep) as client,
    ):
        thread_id = client._create_thread(
            "inv", 2, {}, load_env=True, timeout_s=60.0, request_id=None, metadata=None, cancel=None,
            on_pushback=pushbacks.append, on_retry=lambda: order.append(f"retry after {len(attempts)}"),
        )
    assert thread_id == "thr_1" and sleeps == [2.5]
    assert [(p.code, p.retry_after_s) for p in pushbacks] == [("RESOURCE_EXHAUSTED", 2.5)]
    assert order == ["wait 2.5", "retry after 1"] and len(attempts) == 2
