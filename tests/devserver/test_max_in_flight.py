"""The rate-limited platform fault (issue 18): with ``max_in_flight`` K, a new thread beyond K of
the organization's threads in flight is refused with RESOURCE_EXHAUSTED and a retry hint — over
gRPC as ``retry-after-ms`` and google.rpc.RetryInfo, over HTTP as 429 with ``Retry-After`` — and
the counters say how many were refused and how many were in flight at most.

Threads are held in flight by the seed's ``wait_file`` handler until the test creates the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from kit import AUTH, HEADERS, ORG, OTHER_AUTH, TOKEN
from kit.constants import CHANNEL_OPTIONS
from kit.seeds import DEVSERVER_SEED as SEED
from kit.transports import GrpcTransport, create, settle

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServer, DevServerProcess


def _hold(t: GrpcTransport, gate: Path) -> str:
    thread_id = create(t, "tools", 1, {"op": "wait_file", "path": str(gate)})
    return thread_id


def test_beyond_k_in_flight_is_refused_with_a_retry_hint_on_both_transports(
    server: DevServer, channel: grpc.Channel, admin: pb_grpc.ScriptumDevAdminStub, tmp_path: Path
) -> None:
    t = GrpcTransport(channel, AUTH)
    admin.SetFaults(pb.Faults(max_in_flight=2), metadata=AUTH)
    gate = tmp_path / "gate"
    held = [_hold(t, gate), _hold(t, gate)]

    stub = pb_grpc.ScriptumServiceStub(channel)
    request = pb.CreateThreadRequest(script_name="echo", version=2, input_json='{"text": "x"}')
    with pytest.raises(grpc.RpcError) as refused:
        stub.CreateThread(request, metadata=AUTH, timeout=10)
    error = refused.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert "2 threads of this organization are in flight" in error.details()  # type: ignore[attr-defined]
    trailers = dict(error.trailing_metadata())  # type: ignore[attr-defined]
    assert trailers["retry-after-ms"] == "1000"
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    info = error_details_pb2.RetryInfo()
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0] and status.details[0].Unpack(info)
    assert info.retry_delay.ToMilliseconds() == 1000

    with httpx.Client(base_url=server.addresses.http, headers=HEADERS, timeout=30) as http:
        body = {"scriptName": "echo", "version": 2, "inputJson": json.dumps({"text": "y"})}
        answer = http.post("/v1/scriptum/threads", json=body)
    assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
    assert answer.json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]

    # The fault is the caller's organization's: another one neither sees nor pays it.
    assert admin.GetFaults(pb.GetFaultsRequest(), metadata=OTHER_AUTH).max_in_flight == 0

    gate.touch()
    for thread_id in held:
        assert settle(t, thread_id).status == pb.THREAD_STATUS_COMPLETED
    # Settled threads left the count at once: the next one is accepted.
    assert settle(t, create(t, "echo", 2, {"text": "after"})).status == pb.THREAD_STATUS_COMPLETED
    stats = admin.GetStats(pb.GetStatsRequest(), metadata=AUTH)
    assert (stats.runs_throttled, stats.max_threads_in_flight, stats.threads_in_flight) == (2, 2, 0)


def test_a_repeated_request_id_is_not_a_new_thread_once_admitted(
    channel: grpc.Channel, admin: pb_grpc.ScriptumDevAdminStub, tmp_path: Path
) -> None:
    t = GrpcTransport(channel, AUTH)
    admin.SetFaults(pb.Faults(max_in_flight=1), metadata=AUTH)
    gate = tmp_path / "gate"
    run = {"op": "wait_file", "path": str(gate)}
    first = create(t, "tools", 1, run, metadata={"scriptum.request_id": "r"})
    gate.touch()
    assert settle(t, first).status == pb.THREAD_STATUS_COMPLETED
    again = create(t, "tools", 1, run, metadata={"scriptum.request_id": "r"})
    assert again == first
    stats = admin.GetStats(pb.GetStatsRequest(), metadata=AUTH)
    assert (stats.runs_started, stats.threads_in_flight, stats.runs_throttled) == (1, 0, 0)


def test_the_limit_is_a_cli_flag_and_validated(tmp_path: Path) -> None:
    args = ["--fault-max-in-flight", "1"]
    with DevServerProcess(data_dir=tmp_path / "d", seed=SEED, token=TOKEN, org=ORG, extra_args=args) as dev:
        with grpc.insecure_channel(dev.addresses.grpc, options=CHANNEL_OPTIONS) as channel:
            admin = pb_grpc.ScriptumDevAdminStub(channel)
            assert admin.GetFaults(pb.GetFaultsRequest(), metadata=AUTH).max_in_flight == 1
            with pytest.raises(grpc.RpcError) as bad:
                admin.SetFaults(pb.Faults(max_in_flight=-1), metadata=AUTH)
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
            assert "max_in_flight must be >= 0" in bad.value.details()  # type: ignore[attr-defined]

