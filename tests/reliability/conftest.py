"""Fixtures of the fault-matrix tests: a seeded server on real loopback sockets, and a clean env
for the inner pytest sessions (the token travels in DODIL_TOKEN, as in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Platform
from reliability_kit import ORG, OTHER_ORG, OTHER_TOKEN, TOKEN, calc_platform, write_calc_seed

from pytest_scriptum.devserver import DevServer


@pytest.fixture(autouse=True)
def _token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions authenticate with DODIL_TOKEN, as in CI (tests/conftest.py cleared the rest)."""
    """Inner sessions authenticate with DODIL_TOKEN, as in CI (tests/conftest.py cleared the rest)."""
    monkeypatch.setenv("DODIL_TOKEN", TOKEN)


@pytest.fixture(scope="session")
def seed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_calc_seed(tmp_path_factory.mktemp("seed"))


@pytest.fixture(scope="module")
def _shared_server(tmp_path_factory: pytest.TempPathFactory, seed_dir: Path) -> Iterator[DevServer]:
    with DevServer(
        data_dir=tmp_path_factory.mktemp("data"),
        seed=seed_dir,
        principals={TOKEN: ORG, OTHER_TOKEN: OTHER_ORG},
    ) as server:
        yield server


@pytest.fixture
def platform(_shared_server: DevServer) -> Iterator[Platform]:
    """The module's server with faults off and counters zeroed; faults off again afterwards.

    No test using it may change the server's state on purpose (they assert it did not change).
    """
    plat = calc_platform(_shared_server.addresses.grpc, _shared_server.addresses.http)
    plat.reset()
    yield plat
    plat.set_faults()
    plat.close()
