"""Issue 12 inputs 1-3 and the journal: real signals and a real kill -9 sent to a pytest
subprocess at the named moment (the platform holds the call with a latency fault; the outer test
waits until the server shows the call arrived), then the platform's active version, the journal,
every evidence file, the summary and the exit code."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import Platform
from kit.evidence import read_junit, read_valid_bundle
from kit.interrupts import (
    ACTOR_CONFTEST,
    FAILING_SUITE,
    InnerSession,
    actor_env,
    fresh_calc,
    processes_with_env,
    until,
)

from pytest_scriptum._options import VERIFICATION_OPTIONS_ENV
from pytest_scriptum._proto import scriptum_pb2 as pb

pytestmark = pytest.mark.slow  # real sessions, seconds each: scheduled first (tests/conftest.py)

# The verification's runs stall on the server (until the caller goes away) once the rollback is
# about to be sent: the outer test signals while the re-run is in flight.
STALL_VERIFICATION = """

def pytest_scriptum_before_rollback(plan):
    set_faults(latency_ms=120_000, methods=["CreateThread"])
"""
CANDIDATE_RUNS = 3  # FAILING_SUITE's smoke tests


@pytest.fixture
def calc(tmp_path: Path) -> Iterator[Platform]:
    plat = fresh_calc(tmp_path)
    yield plat
    plat.close()


@pytest.fixture
def suite(pytester: pytest.Pytester, calc: Platform) -> pytest.Pytester:
    pytester.makepyfile(test_smoke=FAILING_SUITE)
    pytester.makeconftest(ACTOR_CONFTEST + STALL_VERIFICATION)
    return pytester


def start(pytester: pytest.Pytester, calc: Platform, *extra: str) -> InnerSession:
    return InnerSession(
        pytester,
        *calc.args(
            "--scriptum-evidence=evidence/bundle.json",
            "--junitxml=evidence/junit.xml",
            "--scriptum-incident=INC-12",
            "--scriptum-retries=0",
            *extra,
        ),
        env=actor_env(calc),
    )


def evidence(pytester: pytest.Pytester) -> tuple[dict, dict[str, str]]:
    bundle = read_valid_bundle(pytester.path / "evidence" / "bundle.json")
    junit = read_junit(pytester.path / "evidence" / "junit.xml")
    return bundle, junit.suite_properties


def journal(pytester: pytest.Pytester) -> dict:
    """The one journal entry in the evidence directory."""
    (path,) = (pytester.path / "evidence").glob("rollback-journal.calc.*.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_verification_stops_it_and_reports_the_state_read_back(
    suite: pytest.Pytester, calc: Platform, sig: signal.Signals
) -> None:
    session = start(suite, calc)
    calc.wait_for(
        lambda stats: stats.calls.get("CreateThread", 0) > CANDIDATE_RUNS,
        "the verification re-run's first run reached the platform",
        timeout_s=120,
    )
    options = suite.path / "evidence" / "verification-v1.options.json"
    assert options.is_file()
    session.signal(sig)
    code, out = session.wait()
    assert code == 21, out
    assert "Traceback" not in out
    assert f"rollback: interrupted - rolled back calc v2 -> v1; then {sig.name} stopped the session" in out
    assert "read back: v1 is active" in out
    assert "ACTION REQUIRED, run by hand: dodil scriptum version rollback calc --to 1" in out
    assert "exit code: 21" in out
    assert calc.active() == 1
    bundle, suite_props = evidence(suite)
    rollback = bundle["rollback"]
    assert (bundle["exit_code"], rollback["status"], rollback["active_after"]) == (21, "interrupted", 1)
    assert rollback["verification"]["verdict"] == "inconclusive"
    assert suite_props["scriptum.rollback.status"] == "interrupted"
    assert bundle["journal"]["state"] == "closed" and bundle["journal"]["status"] == "interrupted"
    assert journal(suite)["state"] == "closed"
    # The child and everything in its process group are gone.
    assert processes_with_env(VERIFICATION_OPTIONS_ENV, str(options)) == []


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["single", "xdist"])
def test_sigterm_during_the_smoke_runs_writes_the_evidence_and_changes_nothing(
    pytester: pytest.Pytester, calc: Platform, xdist: list[str]
) -> None:
    pytester.makepyfile(test_smoke=FAILING_SUITE)
    calc.set_faults(latency_ms=120_000, methods=["CreateThread"])
    session = start(pytester, calc, *xdist)
    calc.wait_for(lambda stats: stats.calls.get("CreateThread", 0) >= 1, "a smoke run reached the platform")
    session.signal(signal.SIGTERM)
    code, out = session.wait()
    assert code == pytest.ExitCode.INTERRUPTED, out
    assert "verdict: INCONCLUSIVE" in out and "rollback:" not in out
    bundle, suite_props = evidence(pytester)
    assert (bundle["verdict"], bundle["rollback"], bundle["exit_code"]) == ("inconclusive", None, 2)
    assert suite_props["scriptum.verdict"] == "inconclusive"
    assert calc.active() == 2
    assert calc.calls("RollbackScript") == 0
    assert list((pytester.path / "evidence").glob("rollback-journal.*")) == []


def test_sigint_while_the_rollback_call_is_in_flight_waits_for_it_and_reports_what_it_did(
    pytester: pytest.Pytester, calc: Platform
) -> None:
    pytester.makepyfile(test_smoke=FAILING_SUITE)
    # The platform is slow on the rollback (within the client's deadline): it applies it late.
    calc.set_faults(latency_ms=3_000, methods=["RollbackScript"])
    session = start(pytester, calc)
    calc.wait_for(lambda stats: stats.calls.get("RollbackScript", 0) >= 1, "the rollback call arrived")
    assert journal(pytester)["state"] == "open"  # the intent was written before the call
    session.signal(signal.SIGINT)
    code, out = session.wait()
    assert code == 21, out
    assert "Traceback" not in out
    assert "rollback: interrupted - rolled back calc v2 -> v1; then SIGINT stopped the session" in out
    assert calc.active() == 1
    bundle, _ = evidence(pytester)
    rollback = bundle["rollback"]
    assert (rollback["status"], rollback["active_after"]) == ("interrupted", 1)
    assert rollback["verification"] is None  # skipped: the signal came before it started
    (entry,) = calc.rollbacks_in_history()
    assert entry.rollback_id == rollback["rollback_id"] == bundle["journal"]["rollback_id"]
    assert journal(pytester)["status"] == "interrupted"


@pytest.mark.parametrize("fault", ["latency_after_ms", "latency_ms"])
def test_a_rollback_slower_than_the_client_deadline_is_resolved_by_our_rollback_id(
    pytester: pytest.Pytester, calc: Platform, fault: str
) -> None:
    # latency_after_ms: applied at once, answered after the client's 10 s deadline. latency_ms: the
    # platform still holds the call when the client gives up, and applies it just after; the
    # read-back may not see it yet, so the same request (same rollback id, compare-and-set) is sent
    # again: exactly one rollback lands either way.
    pytester.makepyfile(test_smoke=FAILING_SUITE)
    calc.set_faults(methods=["RollbackScript"], **{fault: 11_000})
    code, out = start(pytester, calc).wait()
    assert code == 1, out
    assert "rollback: rolled_back_verified - rolled back calc v2 -> v1; the smoke re-run on v1 passed" in out
    assert calc.active() == 1
    bundle, _ = evidence(pytester)
    (entry,) = calc.rollbacks_in_history()
    assert entry.rollback_id == bundle["rollback"]["rollback_id"]
    assert bundle["rollback"]["verification"]["verdict"] == "pass"
    assert bundle["journal"]["state"] == "closed" and bundle["journal"]["status"] == "rolled_back_verified"


def test_kill_9_between_the_rollback_and_the_verification_is_reported_by_the_next_session(
    pytester: pytest.Pytester, calc: Platform
) -> None:
    pytester.makepyfile(test_smoke=FAILING_SUITE)
    # Applied at once, answered a minute later: the kill lands after the platform changed.
    calc.set_faults(latency_after_ms=60_000, methods=["RollbackScript"])
    session = start(pytester, calc)
    until(lambda: calc.active() == 1, "the rollback was applied")
    session.kill()
    code, _ = session.wait()
    assert code == -signal.SIGKILL
    left = journal(pytester)
    assert left["state"] == "open" and (left["from_version"], left["to_version"]) == (2, 1)
    (entry,) = calc.rollbacks_in_history()
    assert entry.rollback_id == left["rollback_id"]  # server-side: the same id in the history
    assert not (pytester.path / "evidence" / "bundle.json").exists()
    calc.set_faults()

    # A fresh session for the same script: preflight reports the open journal, nothing else runs.
    code, out = start(pytester, calc).wait()
    assert code == 21, out
    assert "passed" not in out.splitlines()[-1] and "failed" not in out.splitlines()[-1]
    assert "preflight: FAILED 0. no open rollback journal: an earlier session" in out
    assert "the platform applied it and v1 is active; v1 was never verified" in out
    assert "rollback: interrupted" in out
    assert "ACTION REQUIRED, run by hand: pytest --scriptum-version=1 --scriptum-rollback=off" in out
    bundle, _ = evidence(pytester)
    assert (bundle["exit_code"], bundle["rollback"]["status"], bundle["tests"]) == (21, "interrupted", [])
    assert bundle["journal"]["rollback_id"] == left["rollback_id"]
    assert journal(pytester)["state"] == "reported"
    assert calc.active() == 1 and len(calc.rollbacks_in_history()) == 1

    # Reported once: the next session gates as usual (v2 is no longer active: nothing to roll back).
    code, out = start(pytester, calc).wait()
    assert code == 1, out
    assert "rollback: candidate_not_active" in out
    assert [e.kind for e in calc.history()][-1] == pb.ACTIVATION_KIND_ROLLBACK


def test_a_signal_before_the_rollback_call_changes_nothing_and_keeps_pytests_code(
    pytester: pytest.Pytester, calc: Platform
) -> None:
    pytester.makepyfile(test_smoke=FAILING_SUITE)
    # CI cancels the job while a before_rollback hook (a notification) is still running.
    pytester.makeconftest(
        "import os, signal\n\n\ndef pytest_scriptum_before_rollback(plan):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
    )
    code, out = start(pytester, calc).wait()
    assert code == pytest.ExitCode.INTERRUPTED, out
    assert "Traceback" not in out
    assert "rollback: interrupted - SIGTERM before the rollback was sent: nothing was changed" in out
    bundle, suite_props = evidence(pytester)
    assert (bundle["exit_code"], bundle["rollback"]["status"], bundle["journal"]) == (2, "interrupted", None)
    assert suite_props["scriptum.rollback.status"] == "interrupted"
    assert calc.active() == 2 and calc.calls("RollbackScript") == 0
    assert list((pytester.path / "evidence").glob("rollback-journal.*")) == []


def test_kill_9_during_the_verification_leaves_no_orphan_and_an_open_journal(
    suite: pytest.Pytester, calc: Platform
) -> None:
    session = start(suite, calc)
    calc.wait_for(
        lambda stats: stats.calls.get("CreateThread", 0) > CANDIDATE_RUNS,
        "the verification re-run's first run reached the platform",
        timeout_s=120,
    )
    options = str(suite.path / "evidence" / "verification-v1.options.json")
    assert processes_with_env(VERIFICATION_OPTIONS_ENV, options) != []
    session.kill()
    session.wait()
    # The re-run notices its parent is gone, writes its own evidence and ends.
    until(lambda: processes_with_env(VERIFICATION_OPTIONS_ENV, options) == [], "the orphaned re-run ended")
    child = read_valid_bundle(suite.path / "evidence" / "verification-v1.json")
    assert (child["role"], child["verdict"]) == ("verification", "inconclusive")
    assert journal(suite)["state"] == "open"  # the next session reports it
    assert calc.active() == 1
