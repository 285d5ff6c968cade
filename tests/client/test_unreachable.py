"""A platform that is not there: real loopback sockets, nothing listening."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from kit import TOKEN

from pytest_scriptum.client import ClientSettings, GrpcClient, HttpClient, RetryPolicy, ScriptumError


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that is bound but not listening: connecting to it is refused, every time."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_connection_refused_is_unavailable_after_the_retries(closed_port: int, transport: str) -> None:
    settings = ClientSettings(
        endpoint=f"127.0.0.1:{closed_port}",
        http_url=f"http://127.0.0.1:{closed_port}",
        org="acme",
        token=TOKEN,
        transport=transport,  # type: ignore[arg-type]
        call_timeout_s=5.0,
        retry=RetryPolicy(retries=2),
    )
    sleeps: list[float] = []
    client = (
        GrpcClient(settings, sleep=sleeps.append)
        if transport == "grpc"
        else HttpClient(settings, sleep=sleeps.append)
    )
    with client, pytest.raises(ScriptumError) as info:
        client.list_scripts()
    assert info.value.code == "UNAVAILABLE"
    assert info.value.method == "ListScripts"
    assert "gave up after 3 attempts" in str(info.value)
    assert len(sleeps) == 2
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_a_run_against_nothing_is_unavailable_not_a_transport_error(closed_port: int, transport: str) -> None:
    settings = ClientSettings(
        endpoint=f"127.0.0.1:{closed_port}",
        http_url=f"http://127.0.0.1:{closed_port}",
        org="acme",
        token=TOKEN,
        transport=transport,  # type: ignore[arg-type]
        retry=RetryPolicy(retries=0),
    )
    client = GrpcClient(settings) if transport == "grpc" else HttpClient(settings)
    with client, pytest.raises(ScriptumError) as info:
        client.run_thread("echo", 1, {"a": 1}, timeout_s=1.0)
    assert (info.value.code, info.value.method) == ("UNAVAILABLE", "CreateThread")


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_a_closed_client_raises_scriptum_error(closed_port: int, transport: str) -> None:
    settings = ClientSettings(
        endpoint=f"127.0.0.1:{closed_port}",
        http_url=f"http://127.0.0.1:{closed_port}",
        org="acme",
        token=TOKEN,
        retry=RetryPolicy(retries=0),
    )
    client = GrpcClient(settings) if transport == "grpc" else HttpClient(settings)
    client.close()
    client.close()  # idempotent
    with pytest.raises(ScriptumError) as info:
        client.get_script("echo")
    assert info.value.code == "CANCELLED" and "closed" in info.value.message
    assert "gave up" not in str(info.value)  # not retried
