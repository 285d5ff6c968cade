"""Gate integrity (issue 11): two module-scoped platforms read by the outer test.

``platform``: ``seeds.doubles`` (calc v1 good, v2 bad and active, v3 good) — a failed gate on v2
rolls back to v1. ``good_platform``: calc v1 and v2 both good, v2 active — the gate on v2 must
never roll it back, whatever the platform or the session's plugins do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kit.constants import ORG, TOKEN
from kit.fixtures.doubles import _shared_server, _token_env, platform, seed_dir  # noqa: F401
from kit.platform import Platform
from kit.seeds import write_seed
from kit.seeds.doubles import _HANDLER, SCRIPT, calc_platform

from pytest_scriptum.devserver import DevServer


@pytest.fixture(scope="module")
def _good_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    seed = write_seed(
        tmp_path_factory.mktemp("good-seed"),
        script=SCRIPT,
        versions={v: _HANDLER.format(version=v, bias=0) for v in (1, 2)},
        active=2,
    )
    data = tmp_path_factory.mktemp("good-data")
    with DevServer(data_dir=data, seed=seed, principals={TOKEN: ORG}) as server:
        yield server


@pytest.fixture
def good_platform(_good_server: DevServer) -> Iterator[Platform]:
    """calc v1 and v2 good, v2 active; faults off and counters zeroed before and after."""
    plat = calc_platform(_good_server.addresses.grpc, _good_server.addresses.http)
    plat.reset()
    yield plat
    plat.set_faults()
    plat.close()




@pytest.fixture
def fresh_platform(
    tmp_path_factory: pytest.TempPathFactory,
    seed_dir: Path,  # noqa: F811  (kit.fixtures.doubles's fixture, requested)
) -> Iterator[Platform]:
    """A server of its own on ``seeds.doubles`` (v2 bad and active, rolls back to v1), for tests
    whose session really rolls back."""
    server = DevServer(data_dir=tmp_path_factory.mktemp("fresh-data"), seed=seed_dir, principals={TOKEN: ORG})
    server.start()
    plat = calc_platform(server.addresses.grpc, server.addresses.http)
    yield plat
    plat.close()
    server.stop()
