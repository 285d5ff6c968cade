"""Fault injection and counters, per organization: error_next, methods, stall, latency before and
after the call, version skew, platform failures; one organization's settings never touch another's."""

from __future__ import annotations

import json
import time

import grpc
import httpx
import pytest
from kit import AUTH, OTHER_AUTH
from kit.transports import GrpcTransport, create, settle

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc

Stub = pb_grpc.ScriptumServiceStub
Admin = pb_grpc.ScriptumDevAdminStub


def _code(call: object) -> grpc.StatusCode:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as error:
        return error.code()  # type: ignore[attr-defined,no-any-return]
    return grpc.StatusCode.OK


def _list(stub: Stub, metadata: tuple[tuple[str, str], ...] = AUTH) -> grpc.StatusCode:
    return _code(lambda: stub.ListScripts(pb.ListScriptsRequest(), metadata=metadata, timeout=10))


def test_error_next_fails_n_calls_then_recovers(stub: Stub, admin: Admin) -> None:
    admin.SetFaults(pb.Faults(error_next=2, error_status="RESOURCE_EXHAUSTED"), metadata=AUTH)
    with pytest.raises(grpc.RpcError) as exc:
        stub.ListScripts.with_call(pb.ListScriptsRequest(), metadata=AUTH)
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert ("retry-after-ms", "1000") in tuple(exc.value.trailing_metadata())  # type: ignore[attr-defined]
    assert [_list(stub), _list(stub)] == [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.OK]
    assert admin.GetFaults(pb.GetFaultsRequest(), metadata=AUTH).error_next == 0
    assert admin.GetStats(pb.GetStatsRequest(), metadata=AUTH).calls["ListScripts"] == 3


def test_faults_and_stats_are_per_organization(stub: Stub, admin: Admin) -> None:
    admin.SetFaults(pb.Faults(error_rate=1.0, methods=["ListScripts"]), metadata=AUTH)
    assert _list(stub) == grpc.StatusCode.UNAVAILABLE
    assert _list(stub, OTHER_AUTH) == grpc.StatusCode.OK
    assert admin.GetFaults(pb.GetFaultsRequest(), metadata=OTHER_AUTH).error_rate == 0
    ours = admin.GetStats(pb.GetStatsRequest(), metadata=AUTH)
    theirs = admin.GetStats(pb.GetStatsRequest(), metadata=OTHER_AUTH)
    assert (ours.calls["ListScripts"], theirs.calls["ListScripts"]) == (1, 1)
    admin.ResetStats(pb.ResetStatsRequest(), metadata=OTHER_AUTH)
    assert admin.GetStats(pb.GetStatsRequest(), metadata=AUTH).calls["ListScripts"] == 1
    assert dict(admin.GetStats(pb.GetStatsRequest(), metadata=OTHER_AUTH).calls) == {}


def test_methods_filter_and_admin_never_faulted(stub: Stub, admin: Admin) -> None:
    admin.SetFaults(pb.Faults(error_rate=1.0, methods=["CreateThread"]), metadata=AUTH)
    assert _list(stub) == grpc.StatusCode.OK
    with pytest.raises(grpc.RpcError) as exc:
        stub.CreateThread(pb.CreateThreadRequest(script_name="echo", version=1), metadata=AUTH)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert "injected fault" in exc.value.details()  # type: ignore[attr-defined]
    admin.SetFaults(pb.Faults(error_rate=1.0), metadata=AUTH)
    assert admin.GetStats(pb.GetStatsRequest(), metadata=AUTH).runs_started == 0  # admin unaffected
    assert _list(stub) == grpc.StatusCode.UNAVAILABLE


def test_bad_fault_settings_are_rejected(admin: Admin) -> None:
    for faults, needle in [
        (pb.Faults(error_rate=1.5), "error_rate must be between 0 and 1"),
        (pb.Faults(error_status="NOPE"), "not a gRPC status name"),
        (pb.Faults(methods=["RunThread"]), "unknown ScriptumService method(s) RunThread"),
        (pb.Faults(latency_ms=-1), "latency_ms must be >= 0"),
        (pb.Faults(latency_after_ms=-1), "latency_after_ms must be >= 0"),
        (pb.Faults(platform_failure="OOPS"), "not a platform error code"),
    ]:
        with pytest.raises(grpc.RpcError) as exc:
            admin.SetFaults(faults, metadata=AUTH)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert needle in exc.value.details()  # type: ignore[attr-defined]


def test_stall_hangs_until_the_client_deadline(stub: Stub, admin: Admin, http: httpx.Client) -> None:
    admin.SetFaults(pb.Faults(stall=True, methods=["GetScript"]), metadata=AUTH)
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetScript(pb.GetScriptRequest(name="echo"), metadata=AUTH, timeout=0.3)
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    with pytest.raises(httpx.ReadTimeout):
        http.get("/v1/scriptum/scripts/echo", timeout=0.3)
    assert _list(stub) == grpc.StatusCode.OK


def test_latency_after_applies_the_call_then_answers_late(stub: Stub, admin: Admin) -> None:
    admin.SetFaults(pb.Faults(latency_after_ms=3000, methods=["RollbackScript"]), metadata=AUTH)
    with pytest.raises(grpc.RpcError) as exc:
        stub.RollbackScript(
            pb.RollbackScriptRequest(
                name="echo", to_version=3, expected_active_version=4, rollback_id="rb-late"
            ),
            metadata=AUTH,
            timeout=0.5,
        )
    # The caller's 0.5 s deadline ended the call, not the server's 3 s answer (no wall clock).
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    # The outcome was ambiguous to the caller, but the rollback happened: read back its id.
    history = stub.GetScript(pb.GetScriptRequest(name="echo"), metadata=AUTH).activation_history
    assert (history[-1].version, history[-1].rollback_id) == (3, "rb-late")


def test_latency_before_the_call_delays_it(stub: Stub, admin: Admin) -> None:
    admin.SetFaults(pb.Faults(latency_ms=400, methods=["GetScript"]), metadata=AUTH)
    started = time.monotonic()
    stub.GetScript(pb.GetScriptRequest(name="echo"), metadata=AUTH)
    assert time.monotonic() - started >= 0.4


def test_version_skew_on_every_thread_answer(channel: grpc.Channel, admin: Admin) -> None:
    t = GrpcTransport(channel)
    admin.SetFaults(pb.Faults(version_skew=1), metadata=AUTH)
    created = t.call(
        "CreateThread", pb.CreateThreadRequest(script_name="echo", version=2, input_json='{"text": "a"}')
    )
    assert created.version == 3
    thread = settle(t, created.thread_id)
    assert thread.version == 3  # WatchThread events too
    assert t.call("GetThread", pb.GetThreadRequest(thread_id=created.thread_id)).version == 3
    assert t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=created.thread_id)).version == 3
    assert t.call("ListThreads", pb.ListThreadsRequest()).threads[0].version == 3
    assert t.call("GetScriptVersion", pb.GetScriptVersionRequest(name="echo", version=2)).version == 2
    admin.SetFaults(pb.Faults(), metadata=AUTH)
    assert t.call("GetThread", pb.GetThreadRequest(thread_id=created.thread_id)).version == 2


@pytest.mark.parametrize("code", ["PLATFORM_CAPACITY", "PLATFORM_RUNTIME_CRASH"])
def test_platform_failure_marks_new_threads_as_the_platforms(
    channel: grpc.Channel, admin: Admin, code: str
) -> None:
    t = GrpcTransport(channel)
    admin.SetFaults(pb.Faults(platform_failure=code.lower()), metadata=AUTH)
    thread = settle(t, create(t, "echo", 1, {}))
    assert (thread.status, thread.error_code) == (pb.THREAD_STATUS_FAILED, code)
    assert "not the script's fault" in thread.error
    other = GrpcTransport(channel, OTHER_AUTH)
    with pytest.raises(Exception, match="NOT_FOUND"):
        create(other, "echo", 1, {})  # globex has no scripts: its threads are not failed by acme's faults
    admin.SetFaults(pb.Faults(), metadata=AUTH)
    assert settle(t, create(t, "echo", 1, {})).status == pb.THREAD_STATUS_COMPLETED


def test_faults_and_stats_over_http(http: httpx.Client) -> None:
    put = http.put("/v1/scriptum/admin/faults", json={"errorNext": 1, "methods": ["ListScripts"]})
    assert put.status_code == 200 and put.json()["errorNext"] == 1
    failed = http.get("/v1/scriptum/scripts")
    assert failed.status_code == 503 and failed.json()["status"] == "UNAVAILABLE"
    assert http.get("/v1/scriptum/scripts").status_code == 200
    stats = http.get("/v1/scriptum/admin/stats").json()
    assert stats["calls"]["ListScripts"] == 2
    reset = http.post("/v1/scriptum/admin/stats:reset", json={}).json()
    assert reset["calls"] == {}
    body = json.dumps({"platformFailure": "PLATFORM_DEADLINE", "latencyAfterMs": 1})
    assert (
        http.put("/v1/scriptum/admin/faults", content=body).json()["platformFailure"] == "PLATFORM_DEADLINE"
    )
