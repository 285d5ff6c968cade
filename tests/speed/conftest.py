"""Fixtures of the concurrency tests: token env for the inner session, seeded DevServers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from speed_kit import ORG, TOKEN, Platform, StartPlatform, write_seed

from pytest_scriptum.devserver import DevServer


@pytest.fixture(autouse=True)
def _token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions authenticate with DODIL_TOKEN, as in CI (tests/conftest.py cleared the rest)."""
    monkeypatch.setenv("DODIL_TOKEN", TOKEN)


@pytest.fixture
def start_platform(tmp_path: Path) -> Iterator[StartPlatform]:
    """Start a DevServer seeded with ``svc`` at the given versions (handler sources)."""
    started: list[Platform] = []

    def start(versions: Mapping[int, str]) -> Platform:
        seed = write_seed(tmp_path / f"seed{len(started)}", versions)
        server = DevServer(data_dir=tmp_path / f"data{len(started)}", seed=seed, principals={TOKEN: ORG})
        server.start()
        platform = Platform(server)
        started.append(platform)
        return platform

    yield start
    for platform in started:
        platform.close()
