"""The verdict does not depend on the order results arrive in (DESIGN section 3 "Verdict"): any
interleaving of the tests' phase reports (each test's own phases in order, as xdist delivers them)
folds into the same counts, records and verdict."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_scriptum._session.records import RecordBook, ReportRecord
from pytest_scriptum.gate import GateConfig, evaluate
from pytest_scriptum.outcome import PinnedRun

# One test's phases: (when, outcome, wasxfail); "rerun" is pytest-rerunfailures' failed attempt.
SCENARIOS: dict[str, list[tuple[str, str, bool]]] = {
    "passed": [("setup", "passed", False), ("call", "passed", False), ("teardown", "passed", False)],
    "failed": [("setup", "passed", False), ("call", "failed", False), ("teardown", "passed", False)],
    "setup-error": [("setup", "failed", False), ("teardown", "passed", False)],
    "skipped": [("setup", "skipped", False), ("teardown", "passed", False)],
    "xfail": [("setup", "passed", False), ("call", "skipped", True), ("teardown", "passed", False)],
    "xpass": [("setup", "passed", False), ("call", "passed", True), ("teardown", "passed", False)],
    "rerun-then-pass": [
        ("setup", "passed", False),
        ("call", "rerun", False),
        ("teardown", "passed", False),
        ("setup", "passed", False),
        ("call", "passed", False),
        ("teardown", "passed", False),
    ],
    "failed-then-teardown-error": [
        ("setup", "passed", False),
        ("call", "failed", False),
        ("teardown", "failed", False),
    ],
}
EXPECTED = {
    "passed": "passed",
    "failed": "failed",
    "setup-error": "error",
    "skipped": "skipped",
    "xfail": "skipped",
    "xpass": "skipped",
    "rerun-then-pass": "failed",
    "failed-then-teardown-error": "failed",
}


def _report(nodeid: str, when: str, outcome: str, xfail: bool, record: ReportRecord) -> pytest.TestReport:
    report = pytest.TestReport(nodeid, ("t.py", 0, nodeid), {}, outcome, None, when)  # type: ignore[arg-type]
    if xfail:
        report.wasxfail = "expected"
    record.attach(report)
    return report


def _fold(streams: list[list[pytest.TestReport]], order: list[int]) -> RecordBook:
    book = RecordBook()
    cursors = [0] * len(streams)
    for index in order:
        book.add(streams[index][cursors[index]])
        cursors[index] += 1
    return book


@st.composite
def _sessions(draw: Any) -> tuple[list[list[pytest.TestReport]], list[int], list[int], list[str]]:
    kinds = draw(st.lists(st.sampled_from(sorted(SCENARIOS)), min_size=1, max_size=8))
    streams = []
    for i, kind in enumerate(kinds):
        record = ReportRecord(
            critical=draw(st.booleans()),
            ran_thread=True,
            platform_error=draw(st.booleans()) if kind == "failed" else False,
            run=PinnedRun(script="calc", version=2),
        )
        streams.append([_report(f"t.py::test_{i}", w, o, x, record) for w, o, x in SCENARIOS[kind]])
    slots = [i for i, stream in enumerate(streams) for _ in stream]
    first = draw(st.permutations(slots))
    second = draw(st.permutations(slots))
    return streams, list(first), list(second), kinds


@settings(max_examples=200, deadline=None)
@given(_sessions(), st.sampled_from([GateConfig(), GateConfig(min_pass_rate=0.5, max_errors=1)]))
def test_any_interleaving_gives_the_same_verdict(session: Any, config: GateConfig) -> None:
    streams, first, second, kinds = session
    one, two = _fold(streams, first), _fold(streams, second)
    counts_one, counts_two = one.counts(), two.counts()
    assert (counts_one.passed, counts_one.failed, counts_one.errors, counts_one.skipped) == (
        counts_two.passed,
        counts_two.failed,
        counts_two.errors,
        counts_two.skipped,
    )
    assert sorted(counts_one.critical_failed) == sorted(counts_two.critical_failed)
    assert sorted(counts_one.critical_undecided) == sorted(counts_two.critical_undecided)
    assert {r.nodeid: r.outcome for r in one.records()} == {r.nodeid: r.outcome for r in two.records()}
    v_one, v_two = evaluate(counts_one, config), evaluate(counts_two, config)
    assert v_one.decision == v_two.decision
    # The table: each scenario ends as the one outcome DESIGN section 3 gives it (a failed call
    # marked as the platform's is an error).
    ordered = sorted(one.records(), key=lambda r: int(r.nodeid.rsplit("_", 1)[1]))
    for record, kind in zip(ordered, kinds, strict=True):
        expected = EXPECTED[kind]
        if kind == "failed" and record.outcome == "error":
            expected = "error"  # platform_error=True
        assert record.outcome == expected, (kind, record)
    attempts = {r.nodeid: r.attempts for r in one.records()}
    for i, kind in enumerate(kinds):
        assert attempts[f"t.py::test_{i}"] == (2 if kind == "rerun-then-pass" else 1)
