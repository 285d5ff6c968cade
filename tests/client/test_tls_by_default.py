"""TLS is the default off loopback: gRPC gets secure channel credentials unless the host is this
machine or --scriptum-insecure is given; a plaintext http:// gateway URL to another host is
refused with a message that says why and what to do."""

from __future__ import annotations

import grpc
import pytest

from pytest_scriptum.client import channel_credentials_for

REMOTE = [
    "scriptum.example.com:443",
    "10.0.0.7:50051",
    "[2001:db8::1]:443",
    "dns:///scriptum.example.com:443",
    "scriptum.example.com",
]
LOCAL = ["127.0.0.1:50051", "localhost:1", "[::1]:50051", "127.9.9.9:7", "unix:/tmp/scriptum.sock"]


@pytest.mark.parametrize("target", REMOTE)
def test_non_loopback_targets_get_tls(target: str) -> None:
    assert isinstance(channel_credentials_for(target, insecure=False), grpc.ChannelCredentials)
    assert channel_credentials_for(target, insecure=True) is None  # --scriptum-insecure


@pytest.mark.parametrize("target", LOCAL)
def test_loopback_targets_stay_plaintext(target: str) -> None:
    assert channel_credentials_for(target, insecure=False) is None


SUITE = """
import pytest


@pytest.mark.scriptum("alpha")
@pytest.mark.smoke_input({"x": 1})
def test_one():
    pass
"""


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_plaintext_gateway_url_off_loopback_is_refused(pytester: pytest.Pytester, transport: str) -> None:
    pytester.makepyfile(test_smoke=SUITE)
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--scriptum-endpoint=scriptum.example.com:443",
        "--scriptum-http-url=http://scriptum.example.com:8080",
        f"--scriptum-transport={transport}",
        "--scriptum-org=sec-org",
        "--scriptum-script=alpha",
        "--scriptum-version=1",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "refusing plaintext HTTP to http://scriptum.example.com:8080" in err
    assert "use https:// or pass --scriptum-insecure" in err
    assert "INTERNALERROR" not in result.stdout.str() + err
