"""The report classification (DESIGN section 3, "what counts"): each phase report of a smoke test is
passed, failed, error or skipped (``gate.classify_phase``), the first bad phase decides the test
(``gate.combine``), and the gate's owner folds reports that crossed the xdist channel as plain dicts
(``_session.records``) into the outcome's test records and the gate's counts, in any order.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from pytest_scriptum._session.records import RecordBook, ReportRecord
from pytest_scriptum._session.xdist import REPORT_ATTR
from pytest_scriptum.gate import Outcome, classify_phase, combine
from pytest_scriptum.outcome import PinnedRun

# (phase, pytest's outcome of the phase, wasxfail, platform_error, test_error) -> what it counts as
PHASES: list[tuple[str, str, bool, bool, bool, Outcome]] = [
    # a thread that ended COMPLETED and every expectation and body assertion held
    ("setup", "passed", False, False, False, "passed"),
    ("call", "passed", False, False, False, "passed"),
    ("teardown", "passed", False, False, False, "passed"),
    # an expectation or a body assertion failed, or the thread FAILED for the script's own reason
    ("call", "failed", False, False, False, "failed"),
    # the platform's fault raised in the body (drift, a platform error from scriptum_runner.run)
    ("call", "failed", False, True, False, "error"),
    # the test's own mistake found at run time (schema="declared" on a version without one)
    ("call", "failed", False, False, True, "error"),
    # the pinned run could not judge the candidate: it fails the setup (transport error after
    # retries, deadline, drift, auth, PLATFORM_* failure, an unrequested cancel, a fixture error)
    ("setup", "failed", False, True, False, "error"),
    ("setup", "failed", False, False, False, "error"),
    ("teardown", "failed", False, False, False, "error"),
    # skip, xfail and a non-strict xpass are never a pass
    ("setup", "skipped", False, False, False, "skipped"),
    ("call", "skipped", True, False, False, "skipped"),
    ("call", "passed", True, False, False, "skipped"),
]


@pytest.mark.parametrize(("when", "result", "xfail", "platform", "own", "expected"), PHASES)
def test_each_phase_counts_as_the_table_says(
    when: str, result: str, xfail: bool, platform: bool, own: bool, expected: Outcome
) -> None:
    assert classify_phase(when, result, xfail=xfail, platform_error=platform, test_error=own) == expected


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        (["passed", "passed", "passed"], "passed"),
        (["passed", "failed", "error"], "failed"),  # a failed call, then a teardown error: failed
        (["error", "passed"], "error"),
        (["passed", "skipped", "passed"], "skipped"),
        (["skipped", "error"], "error"),  # a skipped test whose teardown errors is an error
        (["passed", "error", "skipped"], "error"),  # a skip never hides an error
    ],
)
def test_the_first_bad_phase_decides(phases: list[Outcome], expected: Outcome) -> None:
    outcome: Outcome = "passed"
    for phase in phases:
        outcome = combine(outcome, phase)
    assert outcome == expected


def _report(
    nodeid: str, when: str, outcome: str, record: ReportRecord | None, **extra: Any
) -> pytest.TestReport:
    report = pytest.TestReport(
        nodeid, ("t.py", 1, nodeid), {}, outcome, "E   boom" if outcome == "failed" else None, when, **extra
    )
    if record is not None:
        # What crosses the xdist channel: a plain dict, rebuilt by the gate's owner.
        setattr(report, REPORT_ATTR, record.to_dict())
    return report


def test_a_record_survives_the_channel_as_plain_data() -> None:
    record = ReportRecord(
        critical=True,
        run=PinnedRun(
            script="calc",
            version=2,
            thread_id="t-1",
            status="FAILED",
            error_code="SCRIPT_ERROR",
            duration_s=0.25,
        ),
        platform_error=False,
        test_error=True,
        error="schema='declared': ...",
    )
    data = record.to_dict()
    assert all(isinstance(value, (str, int, float, bool, type(None), dict)) for value in data.values())
    assert ReportRecord.from_dict(data) == record
    assert ReportRecord.from_dict({**data, "added_by_a_newer_worker": 1}) == record


@pytest.mark.parametrize(
    "record",
    [
        ReportRecord(),
        ReportRecord(used=False, run=PinnedRun(script="calc", version=2)),
        ReportRecord(
            ran_thread=True, run=PinnedRun(script="calc", version=2, thread_id="t-1", status="COMPLETED")
        ),
    ],
)
def test_a_record_carries_only_what_differs_from_the_defaults(record: ReportRecord) -> None:
    # pytest keeps three reports per test until the session ends: a default says nothing.
    data = record.to_dict()
    defaults = ReportRecord().to_dict()
    assert defaults == {}
    assert all(value is not None for value in data.get("run", {}).values())
    assert ReportRecord.from_dict(data) == record


def _book_of(reports: list[pytest.TestReport]) -> RecordBook:
    book = RecordBook()
    for report in reports:
        book.add(report)
    return book


def _session_reports() -> list[pytest.TestReport]:
    failing = ReportRecord(
        critical=True, run=PinnedRun(script="calc", version=2, thread_id="t-2", status="COMPLETED")
    )
    drifted = ReportRecord(
        run=PinnedRun(script="calc", version=2), platform_error=True, error="version drift: ..."
    )
    passing = ReportRecord(run=PinnedRun(script="calc", version=2, thread_id="t-1", status="COMPLETED"))
    return [
        _report("t.py::test_ok", "setup", "passed", passing),
        _report("t.py::test_ok", "call", "passed", passing),
        _report("t.py::test_ok", "teardown", "passed", passing),
        _report("t.py::test_bad", "setup", "passed", failing),
        _report("t.py::test_bad", "call", "failed", failing),
        _report("t.py::test_bad", "teardown", "failed", failing),
        _report("t.py::test_drift", "setup", "failed", drifted),
        _report("t.py::test_drift", "teardown", "passed", drifted),
        _report("t.py::test_skip", "setup", "skipped", passing),
        _report("t.py::test_not_smoke", "call", "failed", None),
    ]


def test_the_book_folds_reports_into_records_and_counts() -> None:
    book = _book_of(_session_reports())
    records = {record.nodeid: record for record in book.records()}
    assert set(records) == {"t.py::test_ok", "t.py::test_bad", "t.py::test_drift", "t.py::test_skip"}
    assert "t.py::test_not_smoke" not in book
    assert records["t.py::test_ok"].outcome == "passed" and records["t.py::test_ok"].run.thread_id == "t-1"
    assert records["t.py::test_bad"].outcome == "failed" and records["t.py::test_bad"].error == "boom"
    assert records["t.py::test_drift"].outcome == "error"
    assert records["t.py::test_drift"].error == "version drift: ..."
    assert records["t.py::test_skip"].outcome == "skipped" and records["t.py::test_skip"].error is None
    counts = book.counts()
    assert (counts.passed, counts.failed, counts.errors, counts.skipped) == (1, 1, 1, 1)
    assert counts.critical_failed == ("t.py::test_bad",)


def test_the_counts_do_not_depend_on_the_order_tests_report_in() -> None:
    reports = _session_reports()
    by_test: dict[str, list[pytest.TestReport]] = {}
    for report in reports:
        by_test.setdefault(report.nodeid, []).append(report)
    expected = _book_of(reports).counts()
    # xdist interleaves tests in any order; each test's own phases still arrive in order.
    for order in itertools.permutations(by_test):
        assert _book_of([r for nodeid in order for r in by_test[nodeid]]).counts() == expected
