"""Input 13 of issue 11: the command printed after ``rolled_back_unverified`` never names a version
that just failed (the candidate, or the target whose smoke re-run failed); with no safe version
known it says so and lists the activation history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import ORG, TOKEN, Platform, write_seed

from pytest_scriptum.devserver import DevServer

BROKEN = "def handler(event, context):\n    return {'sum': -1}\n"
REGRESSION = "def handler(event, context):\n    return {'sum': event['a'] + event['b'] + 1}\n"
SUITE = """
import pytest

pytestmark = pytest.mark.scriptum("calc")


@pytest.mark.smoke_input({"a": 1, "b": 2})
@pytest.mark.smoke_expect({"sum": 3})
def test_small():
    pass
"""


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """calc v1 broken, v2 regressed and active: the rollback target v1 fails its re-run too."""
    seed = write_seed(tmp_path / "seed", script="calc", versions={1: BROKEN, 2: REGRESSION}, active=2)
    server = DevServer(data_dir=tmp_path / "data", seed=seed, principals={TOKEN: ORG})
    server.start()
    monkeypatch.setenv("DODIL_TOKEN", TOKEN)
    plat = Platform.of(server, token=TOKEN, org=ORG, script="calc")
    yield plat
    plat.close()


def test_no_safe_version_known_says_so_and_lists_the_history(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    pytester.makepyfile(test_smoke=SUITE)
    result = pytester.runpytest(*platform.args("--scriptum-evidence=ev/b.json"), "--scriptum-version=2")
    out = result.stdout.str()
    assert result.ret == 21, out
    line = next(ln for ln in result.outlines if ln.startswith("ACTION REQUIRED"))
    assert "--to 1" not in line and "--to 2" not in line
    assert "--to <known-good version>" in line
    assert "no safe version is known" in line
    assert "v1 (publish), v2 (publish), v1 (rollback)" in line
    bundle = json.loads((pytester.path / "ev" / "b.json").read_text())
    assert bundle["verdict"] == "fail"
    assert (bundle["gate"]["passed"], bundle["gate"]["failed"]) == (0, 1)
    assert bundle["rollback"]["status"] == "rolled_back_unverified"
    assert bundle["rollback"]["manual_command"] == line.removeprefix("ACTION REQUIRED, run by hand: ")
    assert platform.active("calc") == 1
    assert len(platform.rollbacks_in_history("calc")) == 1
