"""The evidence writers are functions of one ``SessionOutcome``, masked by one redactor, written by one
atomic writer whose files get 0666 less the umask (not mkstemp's 0600)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_scriptum.evidence import Redactor, build_bundle, validate_bundle, write_bundle
from pytest_scriptum.evidence._files import write_atomic
from pytest_scriptum.evidence.allure import write_session_results
from pytest_scriptum.evidence.junit import suite_properties
from pytest_scriptum.evidence.summary import summary_lines
from pytest_scriptum.gate import GateConfig, GateCounts, Verdict
from pytest_scriptum.outcome import PinnedRun, SessionOutcome, TestRecord
from pytest_scriptum.preflight import Preflight, PreflightItem
from pytest_scriptum.rollback import RollbackResult, Verification

TOKEN = "tok-writers-leak-4e1d7c"


@pytest.fixture
def umask() -> Iterator[int]:
    """A known umask for the test (the process's own is restored after it)."""
    previous = os.umask(0o027)
    yield 0o027
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_respect_the_umask_and_leave_no_temporary_file(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "deeper" / "file.json"
    write_atomic(target, "one")
    write_atomic(target, b"two")  # replaced whole
    assert target.read_text() == "two"
    assert _mode(target) == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]


def _outcome() -> SessionOutcome:
    counts = GateCounts(passed=1, failed=1, critical_failed=("t.py::test_big",))
    verdict = Verdict("fail", f"critical test failed: t.py::test_big ({TOKEN})", counts, GateConfig())
    verification = Verification(3, "pass", "passed 2 of 2", passed=2, log="/e/verification-v3.log")
    return SessionOutcome(
        script="calc",
        candidate_version=4,
        endpoint="embedded",
        transport="grpc",
        started_at="2026-01-01T00:00:00.000Z",
        finished_at="2026-01-01T00:00:02.500Z",
        verdict=verdict,
        exit_code=1,
        incident="INC-9",
        preflight=Preflight(
            (PreflightItem("3. candidate version exists", True, "calc v4"),),
            target=3,
            target_source="history",
        ),
        rollback=RollbackResult(
            mode="auto",
            status="rolled_back_verified",
            message="rolled back",
            script="calc",
            from_version=4,
            to_version=3,
            incident="INC-9",
            verification=verification,
        ),
        tests=(
            TestRecord(
                "t.py::test_small", "passed", run=PinnedRun("calc", 4, "th-1", "COMPLETED", None, 0.1)
            ),
            TestRecord(
                "t.py::test_big",
                "failed",
                critical=True,
                run=PinnedRun("calc", 4, "th-2", "COMPLETED"),
                error=f"expected 50, got 49 ({TOKEN})",
            ),
        ),
        evidence={"bundle": "/e/scriptum.json", "junit": "/e/junit.xml"},
    )


def test_every_writer_tells_the_same_outcome_and_none_tells_the_token(tmp_path: Path) -> None:
    outcome, redactor = _outcome(), Redactor([TOKEN])
    bundle = build_bundle(outcome, redactor)
    validate_bundle(bundle)
    path = tmp_path / "scriptum.json"
    write_bundle(path, bundle)
    junit = dict(suite_properties(outcome, redactor))
    summary = summary_lines(outcome, redactor)
    allure = tmp_path / "allure"
    written = write_session_results(allure, outcome, redactor)

    assert (bundle["verdict"], junit["scriptum.verdict"], summary[0].split()[1]) == ("fail", "fail", "FAIL")
    assert bundle["rollback"]["status"] == junit["scriptum.rollback.status"] == "rolled_back_verified"
    assert "rollback: rolled_back_verified - rolled back" in summary
    assert bundle["rollback"]["to_version"] == 3 and junit["scriptum.rollback.to"] == "3"
    assert bundle["exit_code"] == 1 and "exit code: 1" in summary
    assert bundle["incident"] == junit["scriptum.incident"] == "INC-9"
    assert [t["nodeid"] for t in bundle["tests"]] == ["t.py::test_small", "t.py::test_big"]
    assert bundle["tests"][1]["thread_id"] == "th-2" and bundle["tests"][1]["critical"] is True
    assert summary[-2:] == ["evidence bundle: /e/scriptum.json", "evidence junit: /e/junit.xml"]
    assert {p.name for p in written} >= {"environment.properties", "executor.json"}

    texts = [path.read_text(), repr(junit), "\n".join(summary), *(p.read_text() for p in allure.iterdir())]
    assert not [text for text in texts if TOKEN in text]
    assert "[redacted]" in bundle["reason"] and "[redacted]" in summary[0]
