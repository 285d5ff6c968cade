"""Input size limits: a run input over 1 MiB is refused (INVALID_ARGUMENT / 413) before anything
runs, on both transports and through the plugin's client (never retried); exactly 1 MiB runs."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest
from security_kit import AUTH, ORG, TOKEN

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.client import ClientSettings, ScriptumError, connect
from pytest_scriptum.devserver import DevServer

MIB = 1024 * 1024


def _input_of(size: int) -> str:
    """A JSON object of exactly ``size`` bytes."""
    skeleton = json.dumps({"x": 1, "pad": ""})
    text = json.dumps({"x": 1, "pad": "a" * (size - len(skeleton))})
    assert len(text.encode()) == size
    return text


def _stats(admin: pb_grpc.ScriptumDevAdminStub) -> pb.Stats:
    return admin.GetStats(pb.GetStatsRequest(), metadata=AUTH, timeout=10)


def test_grpc_and_http_refuse_an_input_over_1_mib(
    stub: pb_grpc.ScriptumServiceStub, admin: pb_grpc.ScriptumDevAdminStub, server: DevServer
) -> None:
    started = _stats(admin).runs_started
    with pytest.raises(grpc.RpcError) as raised:
        stub.RunThread(
            pb.RunThreadRequest(name="alpha", version=1, input_json=_input_of(MIB + 1)), metadata=AUTH
        )
    error = raised.value
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "1 MiB" in (error.details() or "")

    body = {"version": 1, "input_json": _input_of(MIB + 1)}
    response = httpx.post(
        f"{server.addresses.http}/v1/scriptum/scripts/alpha/threads",
        json=body,
        headers=dict(AUTH),
        timeout=30,
    )
    assert response.status_code == 413 and response.json()["code"] == "INVALID_ARGUMENT"
    assert _stats(admin).runs_started == started

    exact = stub.RunThread(
        pb.RunThreadRequest(name="alpha", version=1, input_json=_input_of(MIB)), metadata=AUTH
    )
    assert exact.status == pb.SUCCEEDED and json.loads(exact.output_json)["x2"] == 2


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_the_client_reports_it_without_retrying(
    server: DevServer, admin: pb_grpc.ScriptumDevAdminStub, transport: str
) -> None:
    settings = ClientSettings(
        endpoint=server.addresses.grpc,
        http_url=server.addresses.http,
        org=ORG,
        token=TOKEN,
        transport=transport,  # type: ignore[arg-type]
    )
    calls = _stats(admin).calls.get("RunThread", 0)
    client = connect(settings)
    try:
        with pytest.raises(ScriptumError) as raised:
            client.run_thread("alpha", 1, {"x": 1, "pad": "a" * MIB})
    finally:
        client.close()
    assert raised.value.code == "INVALID_ARGUMENT" and "1 MiB" in raised.value.message
    assert _stats(admin).calls.get("RunThread", 0) == calls + 1  # a client mistake is not retried
