"""Per-test outcome records built from pytest reports (works the same for xdist-forwarded reports).

A smoke test ends as one of passed / failed / error / skipped (DESIGN.md section 3):
- a failure in setup (the pinned run raised: transport error after retries, deadline, version
  drift, auth failure) or teardown is an *error*;
- a failed call is *failed* (the candidate's fault), unless what failed was the platform (a
  platform exception raised in the test body) or the test's own mistake, which is an *error*;
- a thread the platform marks as failed for its own reasons (``error_code`` ``PLATFORM_*``) or
  cancelled without this session asking errors the test at setup: an *error*;
- skip, xfail and xpass are *skipped*: never counted as a pass.

Reports of smoke tests carry a ``scriptum`` attribute (a plain dict, so it crosses the xdist
channel like any report attribute); reports without it are not smoke tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from pytest_scriptum.gate import GateCounts

__all__ = ["Outcome", "RecordBook", "TestRecord"]

Outcome = Literal["passed", "failed", "error", "skipped"]
REPORT_ATTR = "scriptum"


@dataclass
class TestRecord:
    """What is known about one smoke test after its phases were reported."""

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: Outcome = "passed"
    critical: bool = False
    script: str | None = None
    version: int | None = None
    thread_id: str | None = None
    status: str | None = None
    error_code: str | None = None
    duration_s: float | None = None
    error: str | None = None
    worker: str | None = None
    phases: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        """The bundle's ``tests[]`` entry."""
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "critical": self.critical,
            "script": self.script,
            "version": self.version,
            "thread_id": self.thread_id,
            "status": self.status,
            "error_code": self.error_code,
            "duration_s": self.duration_s,
            "error": self.error,
        }


def _short_error(report: pytest.TestReport) -> str:
    info: Mapping[str, Any] = getattr(report, REPORT_ATTR, {}) or {}
    if info.get("error"):
        return str(info["error"])
    text = report.longreprtext.strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # The last "E   ..." line of a pytest traceback is the exception; else the last line.
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    return (errors[-1] if errors else (lines[-1] if lines else report.outcome))[:500]


class RecordBook:
    """Accumulates smoke test records from reports, in the order they were first seen."""

    def __init__(self) -> None:
        self.records: dict[str, TestRecord] = {}

    def add(self, report: pytest.TestReport) -> TestRecord | None:
        """Fold one phase report in; returns the test's record, or None for a non-smoke test."""
        info: Mapping[str, Any] | None = getattr(report, REPORT_ATTR, None)
        if not info or not info.get("smoke"):
            return None
        rec = self.records.get(report.nodeid)
        if rec is None:
            rec = self.records[report.nodeid] = TestRecord(nodeid=report.nodeid)
        rec.phases.add(report.when)
        rec.critical = rec.critical or bool(info.get("critical"))
        for key in ("script", "version", "thread_id", "status", "error_code", "duration_s"):
            if info.get(key) is not None:
                setattr(rec, key, info[key])
        node = getattr(report, "node", None)  # set by xdist on the controller
        if node is not None:
            rec.worker = str(node.gateway.id)
        wasxfail = hasattr(report, "wasxfail")
        if report.skipped or (report.passed and wasxfail and report.when == "call"):
            if rec.outcome == "passed":
                rec.outcome = "skipped"
        elif report.failed:
            if report.when == "call" and not (info.get("platform_error") or info.get("test_error")):
                new: Outcome = "failed"
            else:
                new = "error"
            # The first bad phase decides: a failed call followed by a teardown error stays failed.
            if rec.outcome in ("passed", "skipped"):
                rec.outcome = new
                rec.error = _short_error(report)
        return rec

    def counts(self) -> GateCounts:
        """Gate counts over every recorded smoke test."""
        recs = list(self.records.values())
        return GateCounts(
            passed=sum(r.outcome == "passed" for r in recs),
            failed=sum(r.outcome == "failed" for r in recs),
            errors=sum(r.outcome == "error" for r in recs),
            skipped=sum(r.outcome == "skipped" for r in recs),
            critical_failed=tuple(r.nodeid for r in recs if r.critical and r.outcome == "failed"),
        )
