"""Fixtures of the sharded-gate tests: the shards of one candidate talk to ONE platform, a dev
server process seeded like the example suite, read afterwards over its gRPC port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import ORG, TOKEN, Platform, copy_example_suite
from kit.constants import EXAMPLE_SUITE

from pytest_scriptum.devserver import DevServerProcess


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with DevServerProcess(
        data_dir=tmp_path / "data", seed=EXAMPLE_SUITE / "seed", token=TOKEN, org=ORG
    ) as proc:
        proc.start()
        addresses = proc.addresses
        remote = Platform(addresses.grpc, addresses.http, token=TOKEN, org=ORG, script="invoice-parser")
        try:
            yield remote
        finally:
            remote.close()


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A copy of the example suite, with the platform's token in the environment."""
    copy_example_suite(pytester)
    monkeypatch.setenv("DODIL_TOKEN", TOKEN)
    return pytester
