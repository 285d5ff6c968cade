"""Input size limits: a thread input over 1 MiB is refused at CreateThread (INVALID_ARGUMENT naming
the limit; over HTTP 413 Payload Too Large, the dev server's documented exception to the
grpc-gateway mapping, with the gateway's error body) before anything runs, on both transports and
through the plugin's client (never retried); an input of exactly 1 MiB runs."""

from __future__ import annotations

import json

import grpc
import httpx
import pytest
from kit import AUTH, MIB, ORG, TOKEN, Platform

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.client import ClientSettings, ScriptumError, connect
from pytest_scriptum.devserver import DevServer


def _input_of(size: int) -> str:
    """A JSON object of exactly ``size`` bytes (as ``json.dumps`` writes it)."""
    skeleton = json.dumps({"x": 1, "pad": ""})
    text = json.dumps({"x": 1, "pad": "a" * (size - len(skeleton))})
    assert len(text.encode()) == size
    return text


def test_grpc_and_http_refuse_an_input_over_1_mib(platform: Platform, server: DevServer) -> None:
    started = platform.stats().runs_started
    with pytest.raises(grpc.RpcError) as raised:
        platform.stub.CreateThread(
            pb.CreateThreadRequest(script_name="alpha", version=1, input_json=_input_of(MIB + 1)),
            metadata=AUTH,
            timeout=30,
        )
    error = raised.value
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "1 MiB" in (error.details() or "")

    body = {"scriptName": "alpha", "version": 1, "inputJson": _input_of(MIB + 1)}
    response = httpx.post(
        f"{server.addresses.http}/v1/scriptum/threads", json=body, headers=dict(AUTH), timeout=30
    )
    assert response.status_code == 413, response.text[:300]
    error_body = response.json()
    assert (error_body["code"], error_body["status"]) == (3, "INVALID_ARGUMENT")
    assert "1 MiB" in error_body["message"]
    assert platform.stats().runs_started == started  # nothing ran, nothing was queued

    thread, result = platform.run("alpha", 1, json.loads(_input_of(MIB)))
    assert thread.status == pb.THREAD_STATUS_COMPLETED, (thread.error_code, thread.error)
    assert json.loads(result.output_data)["x2"] == 2


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_the_client_reports_it_without_retrying(
    platform: Platform, server: DevServer, transport: str
) -> None:
    settings = ClientSettings(
        endpoint=server.addresses.grpc,
        http_url=server.addresses.http,
        org=ORG,
        token=TOKEN,
        transport=transport,  # type: ignore[arg-type]
    )
    calls = platform.calls("CreateThread")
    client = connect(settings)
    try:
        with pytest.raises(ScriptumError) as raised:
            client.create_thread("alpha", 1, {"x": 1, "pad": "a" * MIB})
    finally:
        client.close()
    assert raised.value.code == "INVALID_ARGUMENT" and "1 MiB" in raised.value.message
    assert platform.calls("CreateThread") == calls + 1  # a client mistake is not retried
