"""Fixtures of the security tests: a seeded two-organization server on real loopback sockets."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from security_kit import ORG, OTHER_ORG, OTHER_TOKEN, TOKEN, write_alpha_beta_seed

from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServer


@pytest.fixture(autouse=True)
def _token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions authenticate with DODIL_TOKEN, as in CI (tests/conftest.py cleared the rest)."""
    """Inner sessions authenticate with DODIL_TOKEN, as in CI (tests/conftest.py cleared the rest)."""
    monkeypatch.setenv("DODIL_TOKEN", TOKEN)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    seed = write_alpha_beta_seed(tmp_path_factory.mktemp("seed"))
    principals = {TOKEN: ORG, OTHER_TOKEN: OTHER_ORG}
    with DevServer(data_dir=tmp_path_factory.mktemp("data"), seed=seed, principals=principals) as dev:
        yield dev


@pytest.fixture(scope="module")
def channel(server: DevServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.addresses.grpc) as chan:
        yield chan


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.ScriptumServiceStub:
    return pb_grpc.ScriptumServiceStub(channel)


@pytest.fixture(scope="module")
def admin(channel: grpc.Channel) -> pb_grpc.ScriptumDevAdminStub:
    return pb_grpc.ScriptumDevAdminStub(channel)
