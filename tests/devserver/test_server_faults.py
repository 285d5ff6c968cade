"""Fault injection: set at runtime (gRPC and HTTP admin), error_next, methods filter, stall, skew."""

from __future__ import annotations

import grpc
import httpx
import pytest
from devserver_kit import AUTH

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc

Stub = pb_grpc.ScriptumServiceStub
Admin = pb_grpc.ScriptumDevAdminStub


def _list(stub: Stub) -> grpc.StatusCode:
    try:
        stub.ListScripts(pb.ListScriptsRequest(), metadata=AUTH, timeout=10)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[attr-defined,no-any-return]
    return grpc.StatusCode.OK


def test_error_next_fails_n_calls_then_recovers(stub: Stub, admin: Admin) -> None:
    admin.SetFaults(pb.Faults(error_next=2, error_status="RESOURCE_EXHAUSTED"), metadata=AUTH)
    call = stub.ListScripts.with_call
    with pytest.raises(grpc.RpcError) as exc:
        call(pb.ListScriptsRequest(), metadata=AUTH)
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert ("retry-after-ms", "1000") in tuple(exc.value.trailing_metadata())  # type: ignore[attr-defined]
    assert [_list(stub), _list(stub)] == [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.OK]
    assert admin.GetFaults(pb.GetFaultsRequest(), metadata=AUTH).error_next == 0
    assert admin.GetStats(pb.GetStatsRequest(), metadata=AUTH).calls["ListScripts"] == 3


def test_methods_filter_and_admin_never_faulted(stub: Stub, admin: Admin) -> None:
    admin.SetFaults(pb.Faults(error_rate=1.0, methods=["RunThread"]), metadata=AUTH)
    assert _list(stub) == grpc.StatusCode.OK
    with pytest.raises(grpc.RpcError) as exc:
        stub.RunThread(pb.RunThreadRequest(name="echo", version=1, input_json="1"), metadata=AUTH)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert "injected fault" in exc.value.details()  # type: ignore[attr-defined]
    admin.SetFaults(pb.Faults(error_rate=1.0), metadata=AUTH)
    assert admin.GetStats(pb.GetStatsRequest(), metadata=AUTH).runs_started == 0  # admin unaffected
    assert _list(stub) == grpc.StatusCode.UNAVAILABLE


def test_bad_fault_settings_are_rejected(admin: Admin) -> None:
    for faults, needle in [
        (pb.Faults(error_rate=2.0), "error_rate"),
        (pb.Faults(error_status="NOPE"), "error_status"),
        (pb.Faults(methods=["Nope"]), "unknown ScriptumService method"),
    ]:
        with pytest.raises(grpc.RpcError) as exc:
            admin.SetFaults(faults, metadata=AUTH)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert needle in exc.value.details()  # type: ignore[attr-defined]


def test_stall_hangs_until_the_client_deadline(stub: Stub, admin: Admin) -> None:
    admin.SetFaults(pb.Faults(stall=True, methods=["GetScript"]), metadata=AUTH)
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetScript(pb.GetScriptRequest(name="echo"), metadata=AUTH, timeout=0.3)
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    assert _list(stub) == grpc.StatusCode.OK


def test_version_skew_and_latency(stub: Stub, admin: Admin) -> None:
    admin.SetFaults(pb.Faults(version_skew=1, latency_ms=20), metadata=AUTH)
    thread = stub.RunThread(pb.RunThreadRequest(name="echo", version=2, input_json="1"), metadata=AUTH)
    assert thread.version == 3 and thread.status == pb.SUCCEEDED
    assert stub.GetThread(pb.GetThreadRequest(thread_id=thread.thread_id), metadata=AUTH).version == 3


def test_http_faults_set_through_the_admin_route(http: httpx.Client) -> None:
    assert (
        http.put(
            "/v1/scriptum/admin/faults", json={"error_next": 1, "error_status": "RESOURCE_EXHAUSTED"}
        ).status_code
        == 200
    )
    limited = http.get("/v1/scriptum/scripts")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert limited.json()["code"] == "RESOURCE_EXHAUSTED"
    assert http.get("/v1/scriptum/scripts").status_code == 200
    http.put("/v1/scriptum/admin/faults", json={"version_skew": 2, "methods": ["GetThread", "RunThread"]})
    run = http.post("/v1/scriptum/scripts/echo/threads", json={"version": 1, "input_json": "1"}).json()
    assert run["version"] == 3
