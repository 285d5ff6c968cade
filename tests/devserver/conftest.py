"""Shared fixtures of the devserver tests: a seeded server on real loopback sockets, clients for it;
and the fault matrix's server (``kit.fixtures.doubles``) that the fuzz tests hammer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from kit import HEADERS, ORG, OTHER_ORG, OTHER_TOKEN, TOKEN
from kit.constants import CHANNEL_OPTIONS
from kit.fixtures.doubles import _shared_server, _token_env, seed_dir  # noqa: F401  (the fuzzed server)
from kit.seeds import DEVSERVER_SEED
from kit.transports import GrpcTransport, HttpTransport

from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServer, ServerAddresses


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevServer]:
    with DevServer(
        data_dir=tmp_path / "data",
        seed=DEVSERVER_SEED,
        principals={TOKEN: ORG, OTHER_TOKEN: OTHER_ORG},
        org_names={ORG: "Acme Corp"},
    ) as dev:
        yield dev


@pytest.fixture
def addresses(server: DevServer) -> ServerAddresses:
    return server.addresses


@pytest.fixture
def channel(addresses: ServerAddresses) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(addresses.grpc, options=CHANNEL_OPTIONS) as chan:
        yield chan


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.ScriptumServiceStub:
    return pb_grpc.ScriptumServiceStub(channel)


@pytest.fixture
def admin(channel: grpc.Channel) -> pb_grpc.ScriptumDevAdminStub:
    return pb_grpc.ScriptumDevAdminStub(channel)


@pytest.fixture
def http(addresses: ServerAddresses) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=addresses.http, headers=HEADERS, timeout=30) as client:
        yield client


@pytest.fixture(params=["grpc", "http"])
def t(
    request: pytest.FixtureRequest, channel: grpc.Channel, http: httpx.Client
) -> GrpcTransport | HttpTransport:
    """Each transport in turn."""
    return GrpcTransport(channel) if request.param == "grpc" else HttpTransport(http)
