"""Fixtures of the concurrency tests: token env for the inner session, seeded DevServers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from helpers import Platform
from speed_kit import TOKEN, StartPlatform, start_svc_platform


@pytest.fixture(autouse=True)
def _token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions authenticate with DODIL_TOKEN, as in CI (tests/conftest.py cleared the rest)."""
    monkeypatch.setenv("DODIL_TOKEN", TOKEN)


@pytest.fixture
def start_platform(tmp_path: Path) -> Iterator[StartPlatform]:
    """Start a DevServer seeded with ``svc`` at the given versions (handler sources)."""
    started: list[Platform] = []

    def start(versions: Mapping[int, str]) -> Platform:
        platform = start_svc_platform(tmp_path / f"platform{len(started)}", versions)
        started.append(platform)
        return platform

    yield start
    for platform in started:
        platform.close()
