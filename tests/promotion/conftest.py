"""A calc script with v1 and v2 (v2 active) and a draft, per test, on a real server over loopback;
the suite of ``tests/rollback`` (cases plus one marker test)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kit import ORG, TOKEN, Platform, write_seed

from pytest_scriptum.devserver import DevServer

GOOD = "def handler(event, context):\n    return {'sum': event['a'] + event['b']}\n"
# The draft's regression: sums above 10 are off by one; small sums still pass.
REGRESSION = (
    "def handler(event, context):\n    s = event['a'] + event['b']\n"
    "    return {'sum': s + 1 if s > 10 else s}\n"
)
SUITE = """
import pytest

pytestmark = pytest.mark.scriptum("calc")


@pytest.mark.smoke_cases("cases/*.json")
def test_case():
    pass


@pytest.mark.smoke_input({"a": 1, "b": 2})
@pytest.mark.smoke_expect({"sum": 3})
def test_small():
    pass
"""
CASES = {"small": (2, 3, 5), "big": (20, 30, 50), "bigger": (40, 2, 42)}

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
    pytester.makeini("[pytest]\nscriptum_script = calc\nscriptum_evidence = evidence/bundle.json\n")
    pytester.makepyfile(test_calc=SUITE)
    cases = pytester.mkdir("cases")
    for case_id, (a, b, total) in CASES.items():
        (cases / f"{case_id}.json").write_text(
            json.dumps({"id": case_id, "input": {"a": a, "b": b}, "expect": {"output": {"sum": total}}})
        )
    return pytester


def bundle(pytester: pytest.Pytester) -> dict:
    from pytest_scriptum.evidence import read_bundle

    return read_bundle(pytester.path / "evidence" / "bundle.json")
