"""Fixtures of the client tests: one embedded server per module on real loopback sockets, driven
and read through a ``kit.Platform`` (its admin API: faults and counters)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kit import ORG, OTHER_ORG, OTHER_TOKEN, TOKEN, Platform
from kit.constants import TRANSPORTS
from kit.fixtures import _token_env  # noqa: F401  (test_tls_by_default's sessions need a token)
from kit.scripted import ClientFactory, fast_retries
from kit.seeds import CLIENT_SEED

from pytest_scriptum.client import ClientSettings, GrpcClient, HttpClient
from pytest_scriptum.client._base import ClientBase, Sleep


@pytest.fixture(scope="module")
def server_addresses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    from pytest_scriptum.devserver import DevServer

    data_dir = tmp_path_factory.mktemp("scriptum-data")
    principals = {TOKEN: ORG, OTHER_TOKEN: OTHER_ORG}
    with DevServer(data_dir=data_dir, seed=CLIENT_SEED, principals=principals) as dev:
        yield dev.addresses.grpc, dev.addresses.http


@pytest.fixture(scope="module")
def admin_channel(server_addresses: tuple[str, str]) -> Iterator[Platform]:
    admin = Platform(*server_addresses, token=TOKEN, org=ORG)
    yield admin
    admin.close()


@pytest.fixture
def admin(admin_channel: Platform) -> Iterator[Platform]:
    """The server's fault injection and counters: faults off and counters zeroed before the test,
    faults off again after it."""
    admin_channel.reset()
    yield admin_channel
    admin_channel.set_faults()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(server_addresses: tuple[str, str], transport: str) -> Iterator[ClientFactory]:
    """Builds clients of the parametrized transport; closes them after the test."""
    made: list[ClientBase] = []

    def make(
        *,
        token: str = TOKEN,
        org: str = ORG,
        org_name: str = "",
        sleep: Sleep | None = None,
        retries: int = 2,
        call_timeout_s: float = 10.0,
        run_deadline_margin_s: float = 5.0,
    ) -> ClientBase:
        grpc_target, http_url = server_addresses
        settings = ClientSettings(
            endpoint=grpc_target,
            http_url=http_url,
            org=org,
            token=token,
            org_name=org_name,
            transport=transport,  # type: ignore[arg-type]
            call_timeout_s=call_timeout_s,
            run_deadline_margin_s=run_deadline_margin_s,
            retry=fast_retries(retries),
        )
        client = (GrpcClient if transport == "grpc" else HttpClient)(settings, sleep=sleep)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory, admin: Platform) -> ClientBase:
    return make_client()
