"""``scriptum-gate merge BUNDLE...``: the one step of a sharded CI gate that decides, rolls back once
and verifies (DESIGN section 8 "Sharded CI gate", issue 17).

1. Read every shard bundle (``evidence.read_bundle``: schema-valid) and check they cover one
   candidate's suite exactly once (``shard_set.check_shards``). A missing, duplicated, foreign,
   broken or stale shard: inconclusive (exit 20), nothing rolled back, every problem named.
2. Merge the per-test records and evaluate the gate with ``gate.evaluate`` (the function a single
   session uses) under the shards' gate settings.
3. A failed gate rolls back with ``rollback.execute`` (journal intent before the call, the
   compare-and-set, conflict / already-rolled-back handling from what the shards' preflight saw),
   and verifies with ``verification.Rerun``: ``pytest`` over the suite's node ids pinned to the
   target, in the merge job's checkout (``--rootdir``, default the working directory; the ini file
   the shards recorded), options through the same structured channel.
4. Write the merged evidence (bundle role ``merged``, JUnit with the suite properties, the Allure
   session results with ``--alluredir``, the summary)
   and end with the documented exit code (``_exit_codes.session_exit_code``).

The platform connection comes from the environment, as in a shard: ``SCRIPTUM_ENDPOINT``,
``SCRIPTUM_HTTP_URL``, ``SCRIPTUM_ORG_ID``, the token in ``DODIL_TOKEN``/``SCRIPTUM_TOKEN``; the
endpoint must be the one the shards recorded. Run as ``scriptum-gate merge`` or
``python -m pytest_scriptum._session.merge merge``.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_scriptum._exit_codes import ExitCode, session_exit_code
from pytest_scriptum._options import ScriptumConfig, from_environment
from pytest_scriptum._session.journal import JournalEntry, journal_path
from pytest_scriptum._session.resources import SessionResources, remote_connection
from pytest_scriptum._session.shard_set import ShardSet, ShardSetError, check_shards, parse_age
from pytest_scriptum._session.signals import Interruption
from pytest_scriptum._session.verification import Rerun
from pytest_scriptum.evidence import allure, junit
from pytest_scriptum.evidence._files import write_atomic
from pytest_scriptum.evidence.bundle import InvalidBundleError, build_bundle, read_bundle, write_bundle
from pytest_scriptum.evidence.redaction import Redactor
from pytest_scriptum.evidence.summary import summary_lines
from pytest_scriptum.gate import GateConfig, GateCounts, Verdict, evaluate
from pytest_scriptum.outcome import PinnedRun, Repeats, SessionOutcome, TestRecord, utc_now
from pytest_scriptum.rollback import RollbackPlan, RollbackResult, Verification, execute

__all__ = ["main", "merge"]

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scriptum-gate", description="pytest-scriptum's sharded CI gate")
    sub = parser.add_subparsers(dest="command", required=True)
    merge_cmd = sub.add_parser("merge", help="check the shard bundles, decide once, roll back once, verify")
    merge_cmd.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE")
    merge_cmd.add_argument("--evidence", type=Path, help="the merged JSON bundle to write")
    merge_cmd.add_argument("--junitxml", type=Path, help="a JUnit file of the merged records")
    merge_cmd.add_argument("--max-age", default="6h", help="refuse a shard older than this (default 6h)")
    merge_cmd.add_argument("--rollback", choices=("auto", "off", "dry-run"), default="auto")
    merge_cmd.add_argument("--alluredir", type=Path, help="write the Allure session results there")
    merge_cmd.add_argument("--rootdir", type=Path, default=None, help="the suite's checkout (default: cwd)")
    return parser


def _counts(tests: Sequence[Mapping[str, Any]]) -> GateCounts:
    """The gate counts of the merged records, as ``_session.records.RecordBook.counts`` makes
    them from reports (every shard recorded the same classification): advisory tests left out, a
    repeated case's errored attempts charged to the errors."""
    tests = [t for t in tests if not t.get("advisory", False)]
    critical = [t for t in tests if t["critical"]]
    return GateCounts(
        passed=sum(t["outcome"] == "passed" for t in tests),
        failed=sum(t["outcome"] == "failed" for t in tests),
        errors=sum(t["outcome"] == "error" for t in tests) + sum(_attempt_errors(t) for t in tests),
        skipped=sum(t["outcome"] == "skipped" for t in tests),
        critical_failed=tuple(t["nodeid"] for t in critical if t["outcome"] == "failed"),
        critical_undecided=tuple(t["nodeid"] for t in critical if t["outcome"] in ("error", "skipped")),
        errored=tuple(t["nodeid"] for t in tests if t["outcome"] == "error" or _attempt_errors(t)),
        pinned_runs=sum(t["thread_id"] is not None for t in tests),
    )


def _attempt_errors(test: Mapping[str, Any]) -> int:
    repeat = test.get("repeat")
    return int(repeat["errors"]) if repeat and test["outcome"] != "error" else 0


def _record(test: Mapping[str, Any]) -> TestRecord:
    run = PinnedRun(
        script=test["script"],
        version=test["version"],
        thread_id=test["thread_id"],
        status=test["status"],
        error_code=test["error_code"],
        duration_s=test["duration_s"],
    )
    repeat = test.get("repeat")
    return TestRecord(
        test["nodeid"],
        test["outcome"],
        test["critical"],
        run,
        test["error"],
        int(test["attempts"]),
        advisory=bool(test.get("advisory", False)),
        repeat=Repeats.from_dict(repeat) if repeat else None,
        baseline=test.get("baseline"),
    )


def _gate_config(bundle: Mapping[str, Any]) -> GateConfig:
    gate = bundle["gate"]
    return GateConfig(
        min_pass_rate=float(gate["min_pass_rate"]),
        min_tests=int(gate["min_tests"]),
        max_errors=int(gate["max_errors"]),
    )


class _Merge:
    """One merge: the checked shard set, the platform (for a failed gate) and the evidence."""

    def __init__(self, shards: ShardSet, args: argparse.Namespace, env: Mapping[str, str]) -> None:
        self.shards = shards
        self.args = args
        self.first = shards.bundles[0][1]
        self.rootdir = (args.rootdir or Path.cwd()).resolve()
        evidence_dir = args.evidence.parent if args.evidence else self.rootdir / "scriptum-evidence"
        self.workdir = evidence_dir.resolve()
        self.cfg: ScriptumConfig = from_environment(
            env,
            script=shards.script,
            version=shards.candidate_version,
            rollback=args.rollback,
            evidence=args.evidence.resolve() if args.evidence else None,
            # the shards' gate settings, which the verification re-run gets too
            min_pass_rate=self.first["gate"]["min_pass_rate"],
            min_tests=self.first["gate"]["min_tests"],
            max_errors=self.first["gate"]["max_errors"],
        )
        self.journal: JournalEntry | None = None
        self.resources: SessionResources | None = None
        # SIGINT/SIGTERM as in a gated session (DESIGN section 3): held while the merge decides,
        # rolls back and verifies; the verification child's group is stopped on a signal.
        self.interruption = Interruption()

    def preflight_seen(self) -> tuple[int | None, int | None]:
        """(active version, rollback target) as the shards' preflight saw them (the first shard's;
        ``check_shards`` made sure they ran for one candidate)."""
        preflight = self.first["preflight"] or {}
        return preflight.get("active_version"), preflight.get("rollback_target")

    def roll_back(self, verdict: Verdict) -> RollbackResult:
        cfg = self.cfg
        if cfg.endpoint is None or cfg.embedded or cfg.endpoint != self.shards.endpoint:
            raise _Refused(
                f"the shards ran against endpoint {self.shards.endpoint}; set SCRIPTUM_ENDPOINT (and "
                f"SCRIPTUM_HTTP_URL, SCRIPTUM_ORG_ID, the token) to that endpoint to roll back "
                f"(now {cfg.endpoint or 'unset'})"
            )
        active, target = self.preflight_seen()
        try:
            conn = remote_connection(cfg)
        except pytest.UsageError as exc:  # no token, no HTTP URL, plaintext off-loopback, ...
            raise _Refused(str(exc)) from None
        self.resources = SessionResources(cfg, conn)
        plan = RollbackPlan(
            script=self.shards.script,
            mode=self.args.rollback,
            from_version=self.shards.candidate_version,
            to_version=target,
            incident=cfg.incident,
            reason=f"pytest-scriptum sharded gate failed for {self.shards.script} "
            f"v{self.shards.candidate_version}: {verdict.reason}",
            rollback_id=f"pytest-scriptum-{uuid.uuid4().hex}",
        )

        def verify(version: int) -> Verification:
            inifile = self.first["shard"]["inifile"]
            return Rerun(
                cfg,
                conn,
                self.shards.suite_nodeids,
                version,
                self.shards.candidate_version,
                self.workdir,
                self.rootdir / inifile if inifile else None,
                self.rootdir,
                junit=self.args.junitxml.resolve().with_name(
                    f"{self.args.junitxml.stem}.verification-v{version}.xml"
                )
                if self.args.junitxml
                else None,
                alluredir=self.args.alluredir.resolve() if self.args.alluredir else None,
                interruption=self.interruption,
            ).run()

        def before_change(plan: RollbackPlan) -> None:
            entry = JournalEntry.intent(plan, journal_path(self.workdir, plan.script, plan.rollback_id))
            self.workdir.mkdir(parents=True, exist_ok=True)
            entry.write()
            self.journal = entry

        result = execute(
            plan,
            self.resources.client,
            verify=verify,
            allowed=lambda plan: None,
            active_at_preflight=active,
            before_change=before_change,
            interrupted=self.interruption.signal_name,
        )
        if self.journal is not None:
            self.journal = self.journal.closed("closed", result.status)
            self.journal.write()
        return result

    def close(self) -> None:
        if self.resources is not None:
            self.resources.close()


class _Refused(Exception):
    """The merge cannot act (no way to reach the shards' platform): inconclusive, nothing sent."""


def _write_junit(path: Path, outcome: SessionOutcome, redactor: Redactor) -> None:
    suite = ET.Element("testsuite", name="scriptum-gate merge", tests=str(len(outcome.tests)))
    props = ET.SubElement(suite, "properties")
    for name, value in junit.suite_properties(outcome, redactor):
        ET.SubElement(props, "property", name=name, value=value)
    for test in outcome.tests:
        module, _, name = test.nodeid.rpartition("::")
        case = ET.SubElement(suite, "testcase", classname=module, name=name)
        if test.outcome in ("failed", "error"):
            ET.SubElement(case, "failure" if test.outcome == "failed" else "error", message=test.error or "")
        elif test.outcome == "skipped":
            ET.SubElement(case, "skipped")
    suites = ET.Element("testsuites")
    suites.append(suite)
    write_atomic(path, ET.tostring(suites, encoding="unicode") + "\n")


def merge(argv: Sequence[str], env: Mapping[str, str], out: Any = sys.stdout) -> int:
    """Run ``scriptum-gate`` with ``argv`` (without the program name); the exit code."""
    args = _parser().parse_args(list(argv))
    try:
        max_age = parse_age(args.max_age)
    except ValueError as exc:
        print(f"scriptum-gate: {exc}", file=out)
        return 4  # pytest's usage error
    started = utc_now()
    given: list[tuple[str, dict[str, Any]]] = []
    problems: list[str] = []
    for path in args.bundles:
        try:
            given.append((str(path), read_bundle(path)))
        except InvalidBundleError as exc:
            problems.append(str(exc))
    try:
        if problems:
            raise ShardSetError(problems)
        shards = check_shards(given, max_age=max_age, now=datetime.now(timezone.utc))
    except ShardSetError as exc:
        print("scriptum-gate merge: inconclusive, nothing rolled back:", file=out)
        for problem in exc.problems:
            print(f"  - {problem}", file=out)
        return int(ExitCode.INCONCLUSIVE)
    try:
        run = _Merge(shards, args, env)
    except ValueError as exc:  # an environment variable the options table refuses
        print(f"scriptum-gate: {exc}", file=out)
        return 4  # pytest's usage error
    restore_signals = run.interruption.install()
    try:
        with run.interruption.holding():
            return _decide(run, shards, args, started, out)
    finally:
        restore_signals()
        run.close()


def _decide(run: _Merge, shards: ShardSet, args: argparse.Namespace, started: str, out: Any) -> int:
    """Evaluate the merged gate, roll back when it failed, write the evidence; the exit code."""
    config = _gate_config(run.first)
    counts = _counts(shards.tests)
    verdict = evaluate(counts, config)
    rollback: RollbackResult | None = None
    if verdict.decision == "fail":
        try:
            rollback = run.roll_back(verdict)
        except _Refused as exc:
            verdict = Verdict("inconclusive", f"gate failed but cannot roll back: {exc}", counts, config)
    elif verdict.decision == "pass":
        rollback = RollbackResult(
            mode=args.rollback,
            status="not_needed",
            message="the gate passed",
            script=shards.script,
            from_version=shards.candidate_version,
            to_version=run.preflight_seen()[1],
            incident=run.cfg.incident,
        )
    # A signal while deciding, and the platform was not changed: pytest's "interrupted" (2),
    # as a gated session ends (DESIGN section 3); after the rollback call the rollback's status
    # (interrupted, or what was read back) decides, with exit 21.
    interrupted = run.interruption.signal_name() is not None and not (rollback is not None and rollback.sent)
    exit_code = session_exit_code(
        decision=verdict.decision,
        rollback_code=rollback.exit_code if rollback is not None else None,
        pytest_status=2 if interrupted else 0,
        interrupted=interrupted,
        other_tests_failed=False,
    )
    evidence: dict[str, str] = {}
    if args.evidence is not None:
        evidence["bundle"] = str(args.evidence.resolve())
    if args.junitxml is not None:
        evidence["junit"] = str(args.junitxml.resolve())
    if args.alluredir is not None:
        evidence["allure"] = str(args.alluredir.resolve())
    if run.journal is not None:
        evidence["journal"] = run.journal.path
    outcome = SessionOutcome(
        script=shards.script,
        candidate_version=shards.candidate_version,
        endpoint=shards.endpoint,
        transport=str(run.first["transport"]),
        started_at=started,
        finished_at=utc_now(),
        verdict=verdict,
        exit_code=exit_code,
        incident=run.cfg.incident,
        rollback=rollback,
        tests=tuple(_record(t) for t in shards.tests),
        evidence=evidence,
        journal=run.journal.as_dict() if run.journal is not None else None,
        suite_nodeids=shards.suite_nodeids,
        merged=True,
    )
    redactor = Redactor([run.cfg.token])
    if args.evidence is not None:
        bundle = build_bundle(outcome, redactor)
        bundle["preflight"] = run.first["preflight"]
        bundle["api"] = run.first["api"]
        write_bundle(args.evidence, bundle)
    if args.junitxml is not None:
        _write_junit(args.junitxml, outcome, redactor)
    if args.alluredir is not None:
        allure.write_session_results(args.alluredir, outcome, redactor)
    what = f"{shards.total} shards of {shards.script} v{shards.candidate_version}"
    print(f"scriptum-gate merge: {what}", file=out)
    for line in summary_lines(outcome, redactor):
        print(line, file=out)
    return exit_code


def main() -> None:
    """The ``scriptum-gate`` console script."""
    sys.exit(merge(sys.argv[1:], os.environ))


if __name__ == "__main__":
    main()
