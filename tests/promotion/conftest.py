"""A calc script with v1 and v2 (v2 active) and a draft, per test, on a real server over loopback;
the suite of ``tests/rollback`` (cases plus one marker test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kit import ORG, TOKEN, Platform, write_seed
from kit.seeds.calc_regression import GOOD, write_calc_suite

from pytest_scriptum.devserver import DevServer

MakePlatform = Callable[..., Platform]


@pytest.fixture
def make_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakePlatform]:
    """``make_platform(draft=SOURCE, overlay=..., tenant_env=..., good=SOURCE)``: calc v1 and v2
    (active; both ``good``) and the draft."""
    made: list[Platform] = []

    def make(*, draft: str | None = GOOD, overlay: dict[str, str] | None = None,
             tenant_env: dict[str, str] | None = None, good: str = GOOD) -> Platform:
        seed = write_seed(
            tmp_path / "seed", script="calc", versions={1: good, 2: good}, active=2, draft=draft,
            overlay=overlay, tenant_env=tenant_env or {"DB_HOST": "db.kit.invalid"},
        )
        server = DevServer(data_dir=tmp_path / "data", seed=seed, principals={TOKEN: ORG})
        server.start()
        plat = Platform.of(server, token=TOKEN, org=ORG)
        made.append(plat)
        return plat

    monkeypatch.setenv("DODIL_TOKEN", TOKEN)
    yield make
    for plat in made:
        plat.close()


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    return write_calc_suite(pytester)


def bundle(pytester: pytest.Pytester) -> dict:
    from pytest_scriptum.evidence import read_bundle

    return read_bundle(pytester.path / "evidence" / "bundle.json")
