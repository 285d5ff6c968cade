"""Per-test report records: what a smoke test's reports carry, and the book that folds them into the
outcome's test records on the process that owns the gate.

Every phase report of a smoke test carries a ``ReportRecord`` as a plain dict (the report
attribute ``xdist.REPORT_ATTR``), so it crosses the xdist channel like any report attribute; a
report without one is not a smoke test. The book classifies each phase with
``gate.classify_phase`` / ``gate.combine`` (the classification table) and counts for the gate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any

import pytest

from pytest_scriptum._session.xdist import REPORT_ATTR
from pytest_scriptum.gate import GateCounts, Outcome, classify_phase, combine
from pytest_scriptum.outcome import PinnedRun, Repeats, TestRecord

__all__ = ["RecordBook", "ReportRecord"]


@dataclass(frozen=True)
class ReportRecord:
    """What the process that ran a smoke test knows about it, on each of its phase reports.

    ``used``: the test used the platform so far (DESIGN section 3 "What counts": only then is it
    gate evidence); ``ran_thread``: it ran a thread pinned to the candidate; ``run``: the pinned
    run so far; ``platform_error``: the run failed for the platform's reasons;
    ``test_error``: the test's own mistake found at run time (both make a failure an error);
    ``error``: their message; ``usage_error``: the session's usage problem found on an xdist
    worker (the gate's owner turns the exit code into 4); ``advisory``: ``scriptum(advisory=True)``,
    reported but never gate evidence; ``repeat``: a repeated case's attempts
    (``outcome.Repeats.as_dict``), None for one run; ``baseline``: the paired baseline side of
    the case (``--scriptum-baseline=paired``), None unpaired.
    """

    critical: bool = False
    used: bool = True
    ran_thread: bool = False
    run: PinnedRun = field(default_factory=PinnedRun)
    platform_error: bool = False
    test_error: bool = False
    error: str | None = None
    usage_error: str | None = None
    advisory: bool = False
    repeat: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the report attribute (the xdist channel serialises it): the fields that
        differ from their defaults (pytest keeps every report until the session ends, three per
        test, so a session of thousands carries only what says something)."""
        return _non_default(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportRecord:
        """The inverse of ``to_dict``; keys it does not know are ignored."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["run"] = PinnedRun(**values.get("run", {}))
        return cls(**values)

    def attach(self, report: pytest.TestReport, same_as: dict[str, Any] | None = None) -> dict[str, Any]:
        """Put this record on a smoke test's report; returns the dict attached. ``same_as``: the
        dict an earlier phase's report of the same test carries: when this record says the same,
        that dict is attached again instead of an equal one (pytest keeps every report until the
        session ends; a test's three phases usually say the same: issue 18, memory). Nothing
        changes a report's record after it is attached, so the phases can share it."""
        data = self.to_dict()
        if same_as is not None and same_as == data:
            data = same_as
        setattr(report, REPORT_ATTR, data)
        return data

    @classmethod
    def of(cls, report: pytest.TestReport | pytest.CollectReport) -> ReportRecord | None:
        """The record a report carries; None for a report of a test that is not a smoke test."""
        data = getattr(report, REPORT_ATTR, None)
        return cls.from_dict(data) if isinstance(data, dict) else None

    @property
    def errored(self) -> bool:
        """A failure of this test is an error (the platform's or the test's own), not a failure."""
        return self.platform_error or self.test_error


def _short_error(report: pytest.TestReport, record: ReportRecord) -> str:
    if record.error:
        return record.error
    text = report.longreprtext.strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # The last "E   ..." line of a pytest traceback is the exception; else the last line.
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    return (errors[-1] if errors else (lines[-1] if lines else report.outcome))[:500]


@dataclass(slots=True)  # one per smoke test, kept until the session ends (issue 18, memory)
class _Entry:
    """One smoke test while its phases arrive."""

    outcome: Outcome = "passed"
    critical: bool = False
    used: bool = False
    ran_thread: bool = False
    attempts: int = 0
    run: PinnedRun = field(default_factory=PinnedRun)
    error: str | None = None
    advisory: bool = False
    repeat: Repeats | None = None
    baseline: dict[str, Any] | None = None

    @property
    def attempt_errors(self) -> int:
        """Errored attempts of a repeated case that is not itself an error: charged to the error
        budget (DESIGN section 8 "Repeats"); an errored case counts once, as any error does."""
        if self.repeat is None or self.outcome == "error":
            return 0
        return self.repeat.errors


class RecordBook:
    """Accumulates smoke test records from reports, in the order they were first seen."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __contains__(self, nodeid: object) -> bool:
        entry = self._entries.get(nodeid) if isinstance(nodeid, str) else None
        return entry is not None and entry.used

    def _used(self) -> dict[str, _Entry]:
        return {nodeid: e for nodeid, e in self._entries.items() if e.used}

    def add(self, report: pytest.TestReport) -> ReportRecord | None:
        """Fold one phase report in; returns its record, or None for a test that is not a smoke test.

        A failed report without a record for a smoke test already in the book is what xdist sends
        when the worker running it died (``when="???"``, "worker 'gw0' crashed while running"): the
        test is an error, never left as the pass its setup report said.
        """
        record = ReportRecord.of(report)
        if record is None and report.failed and report.nodeid in self._entries:
            # It may have used the platform before dying: a crash is an error either way.
            record = ReportRecord(platform_error=True, error=_short_error(report, ReportRecord()))
        if record is None:
            return None
        entry = self._entries.setdefault(report.nodeid, _Entry())
        entry.critical = entry.critical or record.critical
        entry.used = entry.used or record.used
        entry.ran_thread = entry.ran_thread or record.ran_thread
        entry.advisory = entry.advisory or record.advisory
        # The latest attempt set until the test went bad: then the set that failed it stays, since
        # any failed rerun attempt fails the test (README "Reruns") and a later passing set would
        # otherwise report a failed case as "3 of 3 passed" and count it as pass^N.
        if record.repeat is not None and entry.outcome in ("passed", "skipped"):
            entry.repeat = Repeats.from_dict(record.repeat)
        if record.baseline is not None and entry.outcome in ("passed", "skipped"):  # as repeat above
            entry.baseline = record.baseline
        if report.when == "call":  # one call report per attempt (a rerun plugin's "rerun" included)
            entry.attempts += 1
        entry.run = entry.run.merged(record.run)
        phase = classify_phase(
            report.when,
            report.outcome,
            xfail=hasattr(report, "wasxfail"),
            platform_error=record.platform_error,
            test_error=record.test_error,
        )
        outcome = combine(entry.outcome, phase)
        if outcome != entry.outcome and outcome in ("failed", "error"):
            entry.error = _short_error(report, record)
        entry.outcome = outcome
        return record

    def records(self) -> tuple[TestRecord, ...]:
        """The outcome's test records, in the order the tests were first seen."""
        return tuple(
            TestRecord(
                nodeid=nodeid,
                outcome=e.outcome,
                critical=e.critical,
                run=e.run,
                error=e.error,
                attempts=max(e.attempts, 1),
                advisory=e.advisory,
                repeat=e.repeat,
                baseline=e.baseline,
            )
            for nodeid, e in self._used().items()
        )

    def counts(self, critical_selected: Iterable[str] = ()) -> GateCounts:
        """Gate counts over every recorded smoke test. ``critical_selected``: the selected critical
        smoke tests; one that never reported (not run) is undecided, as is one that errored or
        was skipped. Advisory tests are left out (DESIGN section 8: never part of the verdict or of
        min-tests); a repeated case's errored attempts are charged to ``errors``."""
        entries = {nodeid: e for nodeid, e in self._used().items() if not e.advisory}
        undecided = [
            nodeid for nodeid, e in entries.items() if e.critical and e.outcome in ("error", "skipped")
        ]
        undecided += [nodeid for nodeid in critical_selected if nodeid not in entries]  # never ran
        return GateCounts(
            passed=sum(e.outcome == "passed" for e in entries.values()),
            failed=sum(e.outcome == "failed" for e in entries.values()),
            errors=sum(e.outcome == "error" for e in entries.values())
            + sum(e.attempt_errors for e in entries.values()),
            skipped=sum(e.outcome == "skipped" for e in entries.values()),
            critical_failed=tuple(
                nodeid for nodeid, e in entries.items() if e.critical and e.outcome == "failed"
            ),
            critical_undecided=tuple(dict.fromkeys(undecided)),
            errored=tuple(
                nodeid for nodeid, e in entries.items() if e.outcome == "error" or e.attempt_errors
            ),
            pinned_runs=sum(e.ran_thread for e in entries.values()),
        )


def _non_default(record: Any) -> dict[str, Any]:
    """A dataclass's fields that differ from their defaults, nested dataclasses the same way."""
    data: dict[str, Any] = {}
    for spec in fields(record):
        value = getattr(record, spec.name)
        if spec.default is not MISSING and value == spec.default:
            continue
        if spec.default_factory is not MISSING and value == spec.default_factory():
            continue
        data[spec.name] = _non_default(value) if is_dataclass(value) else value
    return data
