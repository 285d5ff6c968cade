"""DESIGN section 3 "Run modes" and section 6 (issues 11 and 18): the embedded server starts only
when a smoke test is selected; without one the session has no gate (no candidate: pytest's own
exit code) or an inconclusive one (a candidate: exit 20). Seen from inside the inner processes:
every child they spawn is recorded by an audit hook (``kit.probe``), so a server started and
stopped unused would show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kit import write_smoke_ini
from kit.probe import PROBE_CONFTEST, PROBE_DIR_ENV, servers_spawned
from kit.seeds.doubles import SCRIPT, smoke_suite, write_calc_seed

pytestmark = pytest.mark.slow  # real sessions, seconds each: scheduled first (tests/conftest.py)

PLAIN = "def test_plain():\n    assert 1 + 1 == 2\n"


@pytest.fixture
def probe(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An embedded smoke directory (calc v1 good, v2 bad and active, v3 good) whose inner sessions
    record what they spawn in the returned directory."""
    directory = pytester.path / "probe"
    monkeypatch.setenv(PROBE_DIR_ENV, str(directory))
    pytester.makeconftest(PROBE_CONFTEST)
    write_calc_seed(pytester.path / "seed")
    write_smoke_ini(pytester, script=SCRIPT, seed="seed")
    return directory


def _run(pytester: pytest.Pytester, workers: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", workers, "-rA", *args)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_no_smoke_test_and_no_candidate_starts_no_server_and_keeps_pytests_exit_code(
    pytester: pytest.Pytester, probe: Path, workers: str
) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    result = _run(pytester, workers, "--scriptum-evidence=ev/b.json")
    assert result.ret == 0, result.stdout.str()
    assert "scriptum promotion gate" not in result.stdout.str()
    assert servers_spawned(probe) == []
    assert not (pytester.path / "ev").exists()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_no_smoke_test_with_a_candidate_starts_no_server_and_is_inconclusive(
    pytester: pytest.Pytester, probe: Path, workers: str
) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    result = _run(pytester, workers, "--scriptum-version=3", "--scriptum-evidence=ev/b.json")
    out = result.stdout.str()
    assert result.ret == 20, out
    assert servers_spawned(probe) == []
    assert "scriptum: preflight" not in out  # no smoke test selected: no preflight either
    bundle = json.loads((pytester.path / "ev" / "b.json").read_text())
    assert bundle["verdict"] == "inconclusive"
    assert bundle["endpoint"] == "embedded"
    assert bundle["preflight"] is None
    assert bundle["rollback"] is None


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_smoke_session_starts_exactly_one_server(
    pytester: pytest.Pytester, probe: Path, workers: str
) -> None:
    # The probe can see a server: the same directory with smoke tests starts one, once, and passes.
    pytester.makepyfile(test_plain=PLAIN, test_smoke=smoke_suite(3))
    result = _run(pytester, workers, "--scriptum-version=3", "--scriptum-evidence=ev/b.json")
    out = result.stdout.str()
    assert result.ret == 0, out
    assert len(servers_spawned(probe)) == 1
    assert "scriptum: preflight passed" in out
    assert "endpoint=embedded" in out  # the report header still says where the platform is
    bundle = json.loads((pytester.path / "ev" / "b.json").read_text())
    assert (bundle["verdict"], bundle["gate"]["passed"]) == ("pass", 3)
    assert bundle["preflight"]["ok"] is True


@pytest.mark.parametrize("workers", ["0", "2"])
def test_every_smoke_test_deselected_is_inconclusive_and_leaves_no_server_running(
    pytester: pytest.Pytester, probe: Path, workers: str
) -> None:
    pytester.makepyfile(test_plain=PLAIN, test_smoke=smoke_suite(2))
    result = _run(pytester, workers, "--scriptum-version=3", "--scriptum-evidence=ev/b.json", "-k", "plain")
    out = result.stdout.str()
    assert result.ret == 20, out
    # A single process may have started the server while collecting (before -k deselected the
    # smoke tests) and stopped it unused; xdist workers report after deselection: none at all.
    assert len(servers_spawned(probe)) <= (1 if workers == "0" else 0)
    assert "scriptum: preflight" not in out
    bundle = json.loads((pytester.path / "ev" / "b.json").read_text())
    assert bundle["verdict"] == "inconclusive"
    assert bundle["preflight"] is None
    assert bundle["selection"]["partial"] is True


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_failed_preflight_runs_no_smoke_test_and_exits_20(
    pytester: pytest.Pytester, probe: Path, workers: str
) -> None:
    # v9 does not exist: the preflight fails after collection, before any smoke test runs.
    pytester.makepyfile(test_smoke=smoke_suite(2))
    result = _run(pytester, workers, "--scriptum-version=9", "--scriptum-evidence=ev/b.json")
    out = result.stdout.str()
    assert result.ret == 20, out
    assert "scriptum: preflight failed:" in out
    assert len(servers_spawned(probe)) == 1
    bundle = json.loads((pytester.path / "ev" / "b.json").read_text())
    assert bundle["verdict"] == "inconclusive"
    assert bundle["preflight"]["ok"] is False
    assert bundle["gate"]["passed"] == bundle["gate"]["failed"] == 0
    assert bundle["rollback"] is None
