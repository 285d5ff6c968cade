"""Fixtures of the runner tests: the fault matrix's platform (``kit.fixtures.doubles``), and
``start_platform`` for the concurrency tests (``kit.seeds.svc``: a server per call, closed after
the test)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from kit import Platform
from kit.fixtures.doubles import _shared_server, _token_env, platform, seed_dir  # noqa: F401
from kit.seeds.svc import StartPlatform, start_svc_platform


@pytest.fixture
def start_platform(tmp_path: Path) -> Iterator[StartPlatform]:
    """Start a DevServer seeded with ``svc`` at the given versions (handler sources)."""
    started: list[Platform] = []

    def start(versions: Mapping[int, str]) -> Platform:
        plat = start_svc_platform(tmp_path / f"platform{len(started)}", versions)
        started.append(plat)
        return plat

    yield start
    for plat in started:
        plat.close()
