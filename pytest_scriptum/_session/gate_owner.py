"""The gate's owner: the single pytest process, or the xdist controller.

It connects (starting the embedded server if asked), runs the preflight checklist before any
test, folds every smoke report into the record book, evaluates the gate once, rolls back at most
once, builds the session's ``SessionOutcome`` (exit code included) and writes the evidence from
it. Processes that only run tests (xdist workers) have no gate owner.
"""

from __future__ import annotations

import json
import signal
import uuid
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import pytest

from pytest_scriptum import _compat
from pytest_scriptum._exit_codes import ExitCode, session_exit_code
from pytest_scriptum._session import signals, verification
from pytest_scriptum._session.env_inputs import (
    EnvInputError,
    OverlayChange,
    TenantEnv,
    read_env_file,
    read_overlay,
)
from pytest_scriptum._session.env_promotion import EnvPromotion
from pytest_scriptum._session.journal import JournalEntry, OpenJournal, find_open, journal_path, state_of_open
from pytest_scriptum._session.promotion import PublishMode, PublishRecord, publish_draft
from pytest_scriptum._session.records import RecordBook
from pytest_scriptum._session.resources import SessionResources, remote_connection
from pytest_scriptum._session.shard import ShardSplit
from pytest_scriptum._session.signals import Interruption
from pytest_scriptum.client import ScriptumError
from pytest_scriptum.evidence import allure, junit
from pytest_scriptum.evidence.bundle import baseline_tally, build_bundle, write_bundle
from pytest_scriptum.evidence.summary import summary_lines
from pytest_scriptum.gate import GateConfig, Verdict, evaluate, failure_certain
from pytest_scriptum.outcome import HookError, Selection, SessionOutcome, TestRecord, utc_now
from pytest_scriptum.preflight import Preflight, PreflightItem, fingerprint_key, run_preflight
from pytest_scriptum.rollback import RollbackPlan, RollbackResult, Verification, execute

__all__ = ["GateOwner"]

# pytest's own exit codes that the gate never overrides (internal error, usage error).
_PYTEST_OWN = (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR)
# What a hook implementation may raise that must not stop the rollback or the evidence: any error,
# and pytest's outcome exceptions (pytest.fail/skip/exit in a hook), which are BaseExceptions.
_HOOK_FAILURES = (Exception, pytest.fail.Exception, pytest.skip.Exception, pytest.exit.Exception)
# The evidence directory without --scriptum-evidence (DESIGN section 4 "One place").
DEFAULT_EVIDENCE_DIR = "scriptum-evidence"


class GateOwner:
    """Preflight, gate, rollback, outcome and evidence for one session."""

    def __init__(self, config: pytest.Config, resources: SessionResources) -> None:
        self.config = config
        self.resources = resources
        self.cfg = cfg = resources.cfg
        self.book = RecordBook()
        self._preflight: Preflight | None = None
        self.outcome: SessionOutcome | None = None
        self.started_at = utc_now()
        self.crashed_workers: list[str] = []
        self.total_items: int | None = None
        self.finished_items = 0
        self.smoke_nodeids: list[str] = []  # what the verification re-run re-runs
        self.critical_nodeids: list[str] = []  # selected critical smoke tests (single process)
        self.deselected: int | None = None  # tests pytest deselected (-k, -m, --lf, --sw, --deselect)
        self.collection_errors: list[str] = []  # collectors that failed (every process's, xdist too)
        self.last_failed = False  # --lf narrowed the run (read at session start: passes empty it later)
        self.fail_fast_reason: str | None = None
        self.usage_error: str | None = None  # an xdist worker's usage problem
        self.listing = _compat.listing_mode(config)  # --collect-only, --fixtures, ...: no gate
        self.gate_config = GateConfig(
            min_pass_rate=cfg.min_pass_rate, min_tests=cfg.min_tests, max_errors=cfg.max_errors
        )
        self.hook_errors: list[HookError] = []
        self.journal: JournalEntry | None = None  # this session's rollback intent, once written
        self.open_journal: OpenJournal | None = None  # an earlier session's, found in preflight
        self.rollback_status: str | None = None
        self.publish: PublishRecord | None = None  # DESIGN section 8: the draft candidate / the publish
        self.publish_journal: JournalEntry | None = None  # written before PublishScriptDraft
        self._stopped_by: str | None = None  # the signal that stopped the test loop, if one did
        self._tenant_env: TenantEnv | None = None  # --scriptum-env-file, read at session start
        self._overlay_change: OverlayChange | None = None  # --scriptum-overlay, read at session start
        self.env: EnvPromotion | None = None  # the env changes made, and the overlay's snapshot
        self.interruption = Interruption()
        if self.gated:
            # SIGINT/SIGTERM for the whole session (DESIGN section 3 "Rollback"); restored at unconfigure.
            config.add_cleanup(self.interruption.install())
            if cfg.is_verification_run:
                signals.watch_parent()  # a re-run whose parent was killed -9 ends, never runs on orphaned

    @property
    def preflight(self) -> Preflight | None:
        """The checklist's result (None before it ran), with the journal check first: an open
        rollback journal of an earlier session fails it (nothing else runs; exit 21)."""
        return self._preflight

    @preflight.setter
    def preflight(self, result: Preflight | None) -> None:
        self._preflight = result
        if result is not None and not self.cfg.is_verification_run and self.cfg.script:
            self._check_journal(result)

    @property
    def evidence_dir(self) -> Path:
        """Where every file the plugin writes goes (DESIGN section 4 "One place"): the directory of
        ``--scriptum-evidence``, else ``scriptum-evidence/`` under the rootdir."""
        if self.cfg.evidence is not None:
            return self.cfg.evidence.parent
        return self.config.rootpath / DEFAULT_EVIDENCE_DIR

    def _check_journal(self, result: Preflight) -> None:
        """DESIGN section 3: a later session that finds an open journal for its script says so in
        preflight and reports it (exit 21 with the exact state) before doing anything else."""
        assert self.cfg.script
        mine = (self.env.journal if self.env else None, self.publish_journal)
        own = [entry.path for entry in mine if entry is not None]
        entry = find_open(self.evidence_dir, self.cfg.script, exclude=own)
        if entry is None:
            return
        found = state_of_open(entry, self.resources.client)
        self.open_journal = found
        item = PreflightItem("0. no open rollback journal", False, found.summary)
        self._preflight = replace(result, items=(item, *result.items))

    @property
    def gated(self) -> bool:
        """A smoke session: a candidate version is given and tests will run (not a listing mode)."""
        return self.cfg.has_candidate and self.listing is None

    # -- session start ----------------------------------------------------------------------
    def start(self, *, smoke_selected: bool | None = None) -> None:
        """Session start (``smoke_selected`` None): check the options, learn where a remote
        platform is and create the embedded server's token; contact nothing.

        After collection (``smoke_selected`` given; an xdist controller calls it for each worker's
        collection): when a smoke test is selected, connect (waiting for the embedded server that
        started while pytest collected) and run the preflight checklist, once; without one, contact
        nothing (DESIGN section 3 "Run modes" and "Preflight", section 6). UsageError when the
        embedded server cannot start.
        """
        cfg = self.cfg
        if smoke_selected is None:
            self.last_failed = _compat.last_failed_narrowing(self.config)
        if self.listing is not None or cfg.endpoint is None:
            return  # listing modes never contact the platform (DESIGN section 3 "Run modes")
        if smoke_selected is None and self.gated and not cfg.is_verification_run:
            self._read_env_inputs()
        if smoke_selected is None:
            if not cfg.embedded:
                self.resources.connect(remote_connection(cfg, embedded=verification.parent_was_embedded(cfg)))
            if self.gated and not cfg.script:
                raise pytest.UsageError(
                    f"--scriptum-version={cfg.version} needs the script it belongs to: "
                    "pass --scriptum-script=NAME "
                    "or set scriptum_script / SCRIPTUM_SCRIPT"
                )
            if self.gated and cfg.embedded:
                self.resources.embedded_server()  # a missing seed is a usage error now, not later
            return
        if not (smoke_selected and self.gated) or self.preflight is not None:
            return
        if cfg.embedded:
            self.resources.connect()
        assert cfg.script and cfg.has_candidate
        try:
            key = fingerprint_key()
        except ValueError:
            key = None  # the preflight reports the bad key (its item 2)
        env_items = self._promote_env(key) if key is not None else ()
        if any(not item.ok for item in env_items):
            self.preflight = Preflight(env_items)  # nothing else runs (exit 20)
            return
        self.preflight = preflight = run_preflight(
            self.resources.client,
            script=cfg.script,
            candidate=cfg.pinned_version,  # None: the draft is the candidate (DESIGN section 8)
            explicit_target=cfg.rollback_to,
            require_env=cfg.require_env,
            check_target=not cfg.is_verification_run,
            on_env=self.resources.secrets.learn,
            publish=cfg.publish,
            key=key,
        )
        if env_items:
            self._preflight = preflight = replace(preflight, items=(*env_items, *preflight.items))
        self._pair_with_target()
        mode = self._publish_mode
        if mode is not None:
            self.publish = PublishRecord(
                mode,
                preflight.draft_sha,
                "not_requested" if mode == "draft" else "not_published",
                previous_active=preflight.active_version if cfg.publish else None,
                message=(
                    "the draft is the candidate (TestScriptDraft); nothing is published"
                    if mode == "draft"
                    else "nothing published yet"
                ),
            )
        if mode == "publish" and self.preflight is not None and self.preflight.ok:
            self._publish(mode)

    def _read_env_inputs(self) -> None:
        """Read ``--scriptum-env-file`` and ``--scriptum-overlay`` now, before the platform is
        contacted: a bad file is a UsageError naming the option, the file and line (never a value)."""
        cfg = self.cfg
        try:
            if cfg.env_file is not None:
                self._tenant_env = read_env_file(cfg.env_file)
            if cfg.overlay is not None:
                self._overlay_change = read_overlay(cfg.overlay)
        except EnvInputError as exc:
            option = "env_file" if self._tenant_env is None and cfg.env_file is not None else "overlay"
            raise pytest.UsageError(f"{cfg.sources.get(option, option)}: {exc}") from None
        # Values the redactor must know before anything is written (secret by name or declared).
        if self._tenant_env is not None:
            self.resources.secrets.learn(self._tenant_env.values)
        if self._overlay_change is not None:
            self.resources.secrets.learn(self._overlay_change.set)

    def _promote_env(self, key: tuple[bytes, str]) -> tuple[PreflightItem, ...]:
        """The runbook's promotion steps 1 and 2 as the plugin performs them, before the checklist
        reads the env: import the tenant env, snapshot and change the overlay
        (``_session.env_promotion``). A step the platform refuses fails (nothing after it runs)."""
        tenant, change, cfg = self._tenant_env, self._overlay_change, self.cfg
        if (tenant is None and change is None) or cfg.script is None:
            return ()
        if find_open(self.evidence_dir, cfg.script) is not None:
            return ()  # an earlier session's change is unfinished: the preflight reports it, nothing changes
        client = self.resources.client
        env = self.env = EnvPromotion(client, cfg.script, key[0], declared_secret=cfg.secret_env)
        items: list[PreflightItem] = []
        if tenant is not None:
            try:
                env.import_tenant(tenant)
            except ScriptumError as exc:
                return (PreflightItem("1. tenant env imported", False, f"ImportEnvVars failed: {exc}"),)
            detail = f"{len(tenant.values)} keys imported from {tenant.path} (values never shown)"
            items.append(PreflightItem("1. tenant env imported", True, detail))
        if change is not None:
            try:
                env.apply_overlay(change, self.evidence_dir)
            except (ScriptumError, OSError) as exc:
                items.append(PreflightItem("2. script overlay updated", False, f"not applied: {exc}"))
                return tuple(items)
            detail = (
                f"set {', '.join(sorted(change.set)) or 'nothing'}, deleted "
                f"{', '.join(change.delete) or 'nothing'} (snapshot kept in memory only)"
            )
            items.append(PreflightItem("2. script overlay updated", True, detail))
        return tuple(items)

    @property
    def _publish_mode(self) -> PublishMode | None:
        cfg = self.cfg
        if cfg.is_verification_run or not (cfg.draft or cfg.publish):
            return None
        if cfg.draft:
            return "draft+publish" if cfg.publish else "draft"
        return "publish"

    def _publish(self, mode: PublishMode) -> bool:
        """Publish the draft (journal first, ``_session.promotion``); the runs are pinned to the
        version it creates. A publish that cannot be journalled or is refused changed nothing: it
        fails the preflight (``--scriptum-publish`` alone, exit 20) or ends the draft's gate as
        inconclusive. Returns whether the draft was published."""
        cfg, preflight = self.cfg, self.preflight
        assert cfg.script and preflight is not None
        previous = preflight.active_version or None
        try:
            record, entry = publish_draft(
                self.resources.client,
                script=cfg.script,
                mode=mode,
                draft_sha=preflight.draft_sha,
                previous_active=previous,
                incident=cfg.incident,
                evidence_dir=self.evidence_dir,
            )
        except (OSError, ScriptumError) as exc:
            record = PublishRecord(
                mode, preflight.draft_sha, "publish_failed", previous_active=previous,
                message=f"not published (the journal could not be written or the script read): {exc}",
            )
        else:
            self.publish_journal = entry
        self.publish = record
        if record.status != "published":
            if mode == "publish":
                item = PreflightItem("3. draft published by the plugin", False, record.message)
                self._preflight = replace(preflight, items=(*preflight.items, item))
            return False
        self.resources.published = record.version
        return True

    def _pair_with_target(self) -> None:
        """``--scriptum-baseline=paired`` runs every case on the rollback target too: without one
        the session cannot tell a regression from an outage, so preflight fails (inconclusive,
        exit 20; our choice where DESIGN section 8 is silent: a usage error would need the
        platform's answer before the session could know)."""
        preflight = self.preflight
        if preflight is None:
            return
        if self.cfg.baseline == "paired" and preflight.ok and preflight.target is None:
            item = PreflightItem(
                "baseline",
                False,
                "--scriptum-baseline=paired needs a rollback target to run every case on: pass "
                "--scriptum-rollback-to=N (the platform's history names none)",
            )
            self._preflight = preflight = replace(preflight, items=(*preflight.items, item))
        self.resources.baseline_target = preflight.target

    @property
    def preflight_failed(self) -> bool:
        """Whether the checklist failed (then no smoke test runs)."""
        return self.preflight is not None and not self.preflight.ok

    # -- during the run ---------------------------------------------------------------------
    def collected(
        self, total: int, smoke_nodeids: list[str], critical_nodeids: list[str] | None = None
    ) -> None:
        """The selection, once: how many tests will report, which the re-run would repeat, and
        which are critical (a critical test that never reports is undecided)."""
        if self.total_items is None:
            self.total_items = total
            self.smoke_nodeids = list(smoke_nodeids)
            self.critical_nodeids = list(critical_nodeids or ())

    def logreport(self, report: pytest.TestReport, pytest_session: pytest.Session) -> None:
        """Fold one report in; trigger fail-fast once the gate can no longer pass."""
        record = self.book.add(report)
        if record is not None and record.usage_error:
            self.usage_error = record.usage_error
        if report.when == "teardown":
            self.finished_items += 1
        if not (self.cfg.fail_fast and self.gated) or self.fail_fast_reason or self.total_items is None:
            return
        remaining = max(self.total_items - self.finished_items, 0)
        counts = self.book.counts()
        if failure_certain(counts, self.gate_config, remaining=remaining):
            self.fail_fast_reason = (
                f"scriptum fail-fast: the gate can no longer pass ({counts.failed} failed); "
                "cancelling outstanding runs and rolling back"
            )
            self.resources.cancel_outstanding()
            pytest_session.shouldstop = self.fail_fast_reason
            _compat.xdist_request_stop(self.config, self.fail_fast_reason)

    def deselected_items(self, count: int) -> None:
        """``pytest_deselected`` in this process (an xdist worker reports its count at the end:
        every worker collects and deselects the same tests, the first report is enough)."""
        self.deselected = (self.deselected or 0) + count

    def worker_deselected(self, count: int) -> None:
        """An xdist worker's deselected count (the controller collects nothing itself)."""
        if self.deselected is None:
            self.deselected = count

    def selection(self) -> Selection:
        """What part of the suite ran: partial on any deselection, named node ids or ``--lf``."""
        nodeid_args = [arg for arg in self.config.args if "::" in arg]
        deselected = self.deselected or 0
        return Selection(
            partial=deselected > 0 or bool(nodeid_args) or self.last_failed,
            selected=self.total_items or 0,
            deselected=deselected,
            args=tuple(str(arg) for arg in self.config.invocation_params.args),
        )

    def collection_failed(self, nodeid: str) -> None:
        """A collector failed (``pytest_collectreport``; xdist forwards its workers' once each)."""
        if nodeid not in self.collection_errors:
            self.collection_errors.append(nodeid or "(session)")

    def worker_crashed(self, worker: str) -> None:
        """An xdist worker went down with an error or without finishing its session."""
        self.crashed_workers.append(worker)

    def summary_lines(self) -> list[str]:
        """The terminal summary's lines (the verdict's first), masked; empty before the outcome."""
        if self.outcome is None:
            return []
        return summary_lines(self.outcome, self.resources.redactor)

    # -- session end ------------------------------------------------------------------------
    def finish(self, pytest_session: pytest.Session) -> None:
        """Gate, rollback, exit code, outcome and evidence, exactly once. A SIGINT/SIGTERM from
        here on is held, never raised (``Interruption``): the rollback decides what it means."""
        if self.usage_error is not None:
            pytest_session.exitstatus = pytest.ExitCode.USAGE_ERROR  # an xdist worker's usage error
            return
        if not self.gated or self.outcome is not None:
            return
        status = pytest_session.exitstatus
        if status in _PYTEST_OWN:
            return
        # The signal that stopped the test loop (``holding`` forgets it): a published version's
        # evidence names it (DESIGN section 8).
        received = self.interruption.received
        self._stopped_by = signal.Signals(received).name if received is not None else None
        with self.interruption.holding():
            self._finish(pytest_session, status)

    def _finish(self, pytest_session: pytest.Session, status: int) -> None:
        cfg = self.cfg
        interrupted = status == pytest.ExitCode.INTERRUPTED and not self._stopped_on_purpose(pytest_session)
        verdict = self._verdict(interrupted)
        selection = self.selection()
        broken = False
        if cfg.deferred:
            verdict, broken = self._deferred(verdict, interrupted)
        elif not cfg.is_verification_run:
            if self._publish_mode == "draft+publish" and verdict.decision == "pass" and not interrupted:
                verdict = self._publish_and_gate(verdict)
            self._call_hook("pytest_scriptum_gate_evaluated", verdict=verdict)
        rollback = self._rollback_for(verdict, selection)
        rollback_code = rollback.exit_code if rollback is not None else None
        if self.interruption.signal_name() is not None and not (rollback is not None and rollback.sent):
            # A signal while finishing, and the platform was not changed: pytest's own code (DESIGN 3).
            interrupted, status = True, pytest.ExitCode.INTERRUPTED
        exit_code = session_exit_code(
            # A deferred shard ends as a passed gate would (0, or 1 for a failed non-smoke test)
            # unless it broke (20): the merge decides the candidate (DESIGN section 8).
            decision="pass" if cfg.deferred and not broken else verdict.decision,
            rollback_code=rollback_code,
            pytest_status=int(status),
            interrupted=interrupted,
            other_tests_failed=self._non_smoke_failed(),
        )
        exit_code = self._settle_publish(exit_code, verdict, rollback)
        self._settle_env(verdict)
        if self.env is not None and self.env.changes.restore in ("conflict", "restore_failed"):
            exit_code = int(ExitCode.HUMAN_MUST_ACT)  # the overlay is not what this session meant to leave
        pytest_session.exitstatus = exit_code
        self._close_publish_journal()
        journal = self._journal_record() or self.publish_journal
        split = ShardSplit.of(self.config)
        shard = split.record() if split is not None else None
        self.outcome = SessionOutcome(
            script=cfg.script,
            candidate_version=self.resources.candidate,
            endpoint=self.resources.endpoint_label,
            transport=cfg.transport,
            started_at=self.started_at,
            finished_at=utc_now(),
            verdict=verdict,
            exit_code=exit_code,
            incident=cfg.incident,
            verification_of=cfg.verification_of,
            preflight=self.preflight,
            rollback=rollback,
            tests=self._pre_existing(self.book.records()),
            evidence=MappingProxyType(self._evidence_files(journal)),
            selection=selection,
            hook_errors=tuple(self.hook_errors),
            journal=journal.as_dict() if journal is not None else None,
            concurrency=self.resources.concurrency_record(),
            shard=shard.as_dict() if shard is not None else None,
            suite_nodeids=shard.suite_nodeids if shard is not None else None,
            deferred=cfg.deferred,
            publish=self.publish.as_dict() if self.publish is not None else None,
            env_changes=self.env.changes.as_dict() if self.env is not None else None,
        )
        self._write_evidence(self.outcome)

    def _publish_and_gate(self, verdict: Verdict) -> Verdict:
        """``--scriptum-version=draft --scriptum-publish`` after the draft's gate passed (DESIGN
        section 8): publish, then gate the published version as a second pass pinned to it — the
        structured re-run child of ``_session.verification`` (the same node ids, options through
        its JSON channel, its own bundle, stopped on SIGINT/SIGTERM). Its verdict becomes the
        session's: a failed second pass rolls back to the version active before the publish."""
        if self.interruption.signal_name() is not None or not self._publish("draft+publish"):
            signal = self.interruption.signal_name()
            why = f"interrupted by {signal}" if signal else (self.publish.message if self.publish else "")
            return replace(verdict, decision="inconclusive", reason=f"the draft passed; not published: {why}")
        published = self.resources.published
        assert published is not None and self.publish is not None
        second = self._verify(published)
        self.publish = replace(self.publish, second_pass=second.as_dict())
        what = f"the draft passed; the published v{published} "
        if second.verdict == "pass":
            return replace(verdict, reason=what + f"passed its pinned second pass ({second.passed} passed)")
        if second.verdict == "fail":
            reason = what + f"failed its pinned second pass: {second.reason}"
            return replace(verdict, decision="fail", reason=reason)
        reason = what + f"second pass was inconclusive: {second.reason}"
        return replace(verdict, decision="inconclusive", reason=reason)

    def _settle_publish(self, exit_code: int, verdict: Verdict, rollback: RollbackResult | None) -> int:
        """The publish record's last word, and the exit code it makes. A version this session
        published that is active and was never gated to a verdict
        (interrupted, inconclusive, the second pass stopped) is a human's to roll back: exit 21,
        and the evidence names the version and the exact command (DESIGN section 3 exit codes)."""
        record, cfg = self.publish, self.cfg
        if record is not None and record.status == "not_published":
            self.publish = replace(
                record, message=f"the draft's gate ended {verdict.decision}: nothing was published"
            )
        if record is None or record.status != "published" or not cfg.script:
            return exit_code
        undecided = verdict.decision == "inconclusive" or self.interruption.signal_name() is not None
        rolled = rollback is not None and rollback.sent
        if not undecided or rolled:
            return exit_code
        stopped_by = self.interruption.signal_name() or self._stopped_by
        if stopped_by is None and exit_code == pytest.ExitCode.INTERRUPTED:
            stopped_by = "an interrupt"
        why = (
            f"the session was interrupted by {stopped_by}"
            if stopped_by is not None
            else f"the gate was inconclusive: {verdict.reason}"
        )
        ungated = record.ungated(cfg.script, why)
        env = self.env
        if env is not None and env.overlay_changed and env.changes.restore == "not_needed":
            # The overlay change stays with the ungated version (never gated either way), and its
            # snapshot lives in this process only: the version rollback alone leaves the new
            # overlay under the old version, so the human is told which keys to put back.
            keys = ", ".join(sorted({*env.changes.overlay_set, *env.changes.overlay_deleted}))
            ungated = replace(
                ungated,
                message=(
                    f"{ungated.message}; then restore the overlay keys {keys} of {cfg.script} from "
                    "your configuration source (this session's change stays; their earlier values "
                    "were never stored)"
                ),
            )
        self.publish = ungated
        return int(ExitCode.HUMAN_MUST_ACT)

    def _close_publish_journal(self) -> None:
        """Close the publish's journal entry with the publish's last status: the evidence says what
        to do from here (an entry left open by a kill -9 is what the next session reports)."""
        entry, record = self.publish_journal, self.publish
        if entry is None or record is None:
            return
        closed = entry.closed("closed", record.status)
        try:
            closed.write()
        except OSError:
            return  # stays open: the next session reports it, the safe side
        self.publish_journal = closed

    def _pre_existing(self, tests: tuple[TestRecord, ...]) -> tuple[TestRecord, ...]:
        """Paired cases that failed on both sides and whose baseline, the same version, failed in
        the previous bundle at ``--scriptum-evidence`` too: ``baseline.pre_existing`` (DESIGN
        section 8 is silent on what "failed on the baseline before" reads; we read the bundle this
        session is about to replace: no bundle, or one that cannot be read, makes none pre-existing)."""
        path = self.cfg.evidence
        if path is None or not any(t.baseline for t in tests):
            return tests
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
            before = {
                (t["nodeid"], t["baseline"]["version"])
                for t in previous["tests"]
                if isinstance(t.get("baseline"), dict) and t["baseline"].get("outcome") == "failed"
            }
        except (OSError, ValueError, KeyError, TypeError):
            before = set()  # nothing known from before: no case is pre-existing
        marked = []
        for test in tests:
            baseline = test.baseline
            sides = (baseline.get("candidate_outcome"), baseline["outcome"]) if baseline else None
            if baseline is not None and sides == ("failed", "failed"):
                again = (test.nodeid, baseline.get("version")) in before
                test = replace(test, baseline={**baseline, "pre_existing": again})
            marked.append(test)
        return tuple(marked)

    def _journal_record(self) -> JournalEntry | None:
        """Close this session's journal entry (or mark an earlier session's open one reported) and
        return what the evidence says about it. A journal that cannot be closed stays open: the
        next session reports it, which is the safe side."""
        entry = self.journal
        if entry is None and self.open_journal is not None:
            found = self.open_journal.entry
            entry = found.closed("reported", "interrupted") if found.script else found
        elif entry is not None and self.rollback_status is not None:
            entry = entry.closed("closed", self.rollback_status)
        if entry is not None and entry.state != "open":
            try:
                entry.write()
            except OSError:
                entry = replace(entry, state="open", closed_at=None)
        return entry

    def _call_hook(self, name: str, **kwargs: Any) -> list[Any]:
        """Call every implementation of the ``pytest_scriptum_*`` hook ``name`` on its own: one that
        raises is recorded in ``hook_errors`` (bundle and summary) and never stops the others, the
        rollback or the evidence (DESIGN section 2 "Plugin hooks"). Returns the non-None answers."""
        hook = getattr(self.config.hook, name)
        impls = hook.get_hookimpls()
        if any(impl.hookwrapper or impl.wrapper for impl in impls):
            # A wrapper needs pluggy's own calling convention: the hook is called as one.
            try:
                return list(hook(**kwargs))
            except _HOOK_FAILURES as exc:
                self._hook_failed(name, "(hook wrapper chain)", exc)
                return []
        answers = []
        for impl in reversed(impls):  # pluggy's order: last registered first
            try:
                answer = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except _HOOK_FAILURES as exc:
                self._hook_failed(name, impl.plugin_name, exc)
                continue
            if answer is not None:
                answers.append(answer)
        return answers

    def _hook_failed(self, hook: str, plugin: str, exc: BaseException) -> None:
        where = plugin
        try:
            where = str(Path(plugin).relative_to(self.config.rootpath))
        except ValueError:
            pass
        text = f"{type(exc).__name__}: {exc}"
        self.hook_errors.append(HookError(hook, where, text if len(text) <= 500 else text[:497] + "..."))

    def _verdict(self, interrupted: bool) -> Verdict:
        counts = self.book.counts(self.critical_nodeids)
        if interrupted:
            # Ctrl-C: a human stopped the gate; half the evidence decides nothing, so nothing rolls
            # back, and the exit code stays pytest's own "interrupted".
            why = (
                "collection errors: no smoke test ran"
                if self._collection_failed()
                else "the session was interrupted before every smoke test finished"
            )
            return Verdict("inconclusive", why, counts, self.gate_config)
        verdict = evaluate(
            counts,
            self.gate_config,
            preflight_failure=self.preflight.failure if self.preflight else None,
            crashed_workers=self.crashed_workers,
            collection_errors=self.collection_errors,
        )
        tally = baseline_tally(self.book.records())
        if tally is not None and tally["candidate_failed"]:
            # The reason names the baseline: "both failed" is why those cases are errors (section 8).
            verdict = replace(verdict, reason=f"{verdict.reason}; {tally['text']}")
        return verdict

    @property
    def _mode(self) -> Literal["auto", "off", "dry-run"]:
        """The rollback mode a result records: a deferred shard never rolls back (``off``)."""
        mode = self.cfg.rollback
        return "off" if mode == "defer" else mode

    def _deferred(self, verdict: Verdict, interrupted: bool) -> tuple[Verdict, bool]:
        """A shard's verdict (``--scriptum-rollback=defer``, DESIGN section 8): always inconclusive,
        nothing is decided or rolled back here, and whether the shard itself broke (interrupted,
        preflight failed, collection errors, a crashed worker: the gate's own reason is kept, the
        merge refuses the shard). No ``gate_evaluated`` hook: the merge evaluates the gate."""
        preflight_failed = self.preflight is not None and self.preflight.failure is not None
        broken = interrupted or preflight_failed or bool(self.crashed_workers or self.collection_errors)
        shard = self.cfg.shard
        where = f"shard {shard}" if shard is not None else "this shard"
        reason = (
            f"{where} broke: {verdict.reason}"
            if broken
            else f"deferred: {where} decides nothing alone; `scriptum-gate merge` decides over every shard"
        )
        return replace(verdict, decision="inconclusive", reason=reason), broken

    def _rollback_for(self, verdict: Verdict, selection: Selection) -> RollbackResult | None:
        """A failed gate rolls back (never on the verification re-run); a passed one needs none; an
        inconclusive one attempts nothing (None)."""
        cfg = self.cfg
        if self.open_journal is not None:
            # An earlier session's rollback is unfinished: that is what this session reports (exit 21).
            self.rollback_status = "interrupted"
            return self.open_journal.result(self._mode)
        if verdict.decision == "fail" and not cfg.is_verification_run and self.resources.candidate is None:
            # --scriptum-version=draft: the draft was tested, nothing was published or activated.
            return RollbackResult(
                mode=self._mode,
                status="candidate_not_active",
                message="the candidate is the draft, never published or activated: nothing to roll back",
                script=cfg.script,
                incident=cfg.incident,
            )
        if verdict.decision == "fail" and not cfg.is_verification_run:
            return self._roll_back(verdict, selection)
        if verdict.decision == "pass":
            return RollbackResult(
                mode=self._mode,
                status="not_needed",
                message="the gate passed",
                script=cfg.script,
                from_version=self.resources.candidate,
                to_version=self._target(),
                incident=cfg.incident,
            )
        return None

    def _evidence_files(self, journal: JournalEntry | None = None) -> dict[str, str]:
        """What ``_write_evidence`` will write, by name (in the order the summary lists them), and
        the rollback journal when there is one."""
        files: dict[str, str] = {}
        if self.cfg.evidence is not None:
            files["bundle"] = str(self.cfg.evidence)
        junit_file = _compat.junit_path(self.config)
        if junit_file is not None and _compat.junit_writing(self.config):
            files["junit"] = str((self.config.invocation_params.dir / junit_file).resolve())
        allure_dir = self._allure_session_dir()
        if allure_dir is not None:
            files["allure"] = str(allure_dir)
        if journal is not None:
            files["journal"] = journal.path
        publish_journal = self.publish_journal
        if publish_journal is not None and (journal is None or journal.path != publish_journal.path):
            files["publish_journal"] = publish_journal.path
        overlay_journal = self.env.journal if self.env is not None else None
        if overlay_journal is not None:
            files["overlay_journal"] = overlay_journal.path
        return files

    def _allure_session_dir(self) -> Path | None:
        directory = _compat.allure_results_dir(self.config)
        # The verification child's per-test results are in the parent's directory already; the
        # session files are the parent's.
        return None if directory is None or self.cfg.is_verification_run else directory

    def _write_evidence(self, outcome: SessionOutcome) -> None:
        """The bundle, JUnit suite properties and the session's Allure files, all from ``outcome``.
        Runs in ``pytest_sessionfinish`` (tryfirst), before junitxml writes its file."""
        redactor = self.resources.redactor
        if self.cfg.evidence is not None:
            write_bundle(self.cfg.evidence, build_bundle(outcome, redactor))
        _compat.add_junit_suite_properties(self.config, junit.suite_properties(outcome, redactor))
        directory = self._allure_session_dir()
        if directory is not None:
            patterns = _compat.allure_link_patterns(self.config)
            allure.write_session_results(directory, outcome, redactor, link_patterns=patterns)

    def _collection_failed(self) -> bool:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        errors = reporter.stats.get("error", []) if reporter is not None else []
        return any(isinstance(r, pytest.CollectReport) for r in errors)

    def _stopped_on_purpose(self, pytest_session: pytest.Session) -> bool:
        """-x / --maxfail (also xdist's) or fail-fast stopped the run, not a Ctrl-C."""
        return bool(
            self.fail_fast_reason
            or pytest_session.shouldfail
            or pytest_session.shouldstop
            or _compat.xdist_stopping(self.config)
        )

    def _target(self) -> int | None:
        return self.preflight.target if self.preflight else None

    def _non_smoke_failed(self) -> bool:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return False
        failed = [r for key in ("failed", "error") for r in reporter.stats.get(key, [])]
        return any(getattr(r, "nodeid", None) not in self.book for r in failed)

    def _allowed(self, plan: RollbackPlan) -> str | None:
        # Only an explicit False vetoes; a hook that raises is recorded, never a veto.
        answers = self._call_hook("pytest_scriptum_before_rollback", plan=plan)
        if any(answer is False for answer in answers):
            return "a pytest_scriptum_before_rollback hook returned False"
        return None

    def _write_intent(self, plan: RollbackPlan) -> None:
        """The journal entry, right before the rollback call (OSError: no call is sent)."""
        entry = JournalEntry.intent(plan, journal_path(self.evidence_dir, plan.script, plan.rollback_id))
        entry.write()
        self.journal = entry

    def _roll_back(self, verdict: Verdict, selection: Selection) -> RollbackResult:
        cfg = self.cfg
        candidate = self.resources.candidate
        assert cfg.script and candidate is not None
        # A partial session proves less than the suite: a rollback mode nobody chose (the default)
        # only says what it would do; an explicit --scriptum-rollback=auto (CLI, env, ini) rolls back.
        mode = self._mode
        chosen = cfg.sources.get("rollback", "default") != "default"
        downgraded = selection.partial and mode == "auto" and not chosen
        if downgraded:
            mode = "dry-run"
        # The rollback id makes our own entry in the history recognisable after a conflict or an
        # ambiguous answer: two sessions failing the same gate write the same words, never the same id.
        plan = RollbackPlan(
            script=cfg.script,
            mode=mode,
            from_version=candidate,
            to_version=self._target(),
            incident=cfg.incident,
            reason=f"pytest-scriptum gate failed for {cfg.script} v{candidate}: {verdict.reason}",
            rollback_id=f"pytest-scriptum-{uuid.uuid4().hex}",
        )
        result = execute(
            plan,
            self.resources.client,
            verify=self._restore_and_verify,
            allowed=self._allowed,
            # A version this session published was active from its publish on (DESIGN section 8).
            active_at_preflight=(
                self.resources.published
                if self.resources.published is not None
                else (self.preflight.active_version if self.preflight else None)
            ),
            before_change=self._write_intent,
            interrupted=self.interruption.signal_name,
        )
        if downgraded:
            result = replace(
                result,
                message=(
                    f"partial session ({selection.describe()}): the default rollback mode acts as "
                    f"dry-run; pass --scriptum-rollback=auto to roll back. {result.message}"
                ),
            )
        env = self.env
        if env is not None and env.changes.restore == "conflict":
            # The version is rolled back; the overlay is not ours any more: nothing overwritten.
            result = replace(
                result,
                status="conflict",
                message=f"{result.message}; {env.changes.message}",
                manual_command=(
                    f"dodil scriptum version rollback {cfg.script} --to {plan.to_version} is done; check "
                    f"the overlay by hand (GetScriptEnv {cfg.script}): keys "
                    f"{', '.join(sorted({*env.changes.overlay_set, *env.changes.overlay_deleted}))}"
                ),
            )
        self.rollback_status = result.status
        self._call_hook("pytest_scriptum_after_rollback", result=result)
        return result

    def _restore_and_verify(self, target: int) -> Verification:
        """After the rollback call: restore the overlay first, so the verification re-run sees the
        restored overlay (DESIGN section 8); an overlay another actor changed meanwhile is a
        conflict and nothing more runs."""
        env = self.env
        if env is not None and env.changes.restore == "not_needed":
            changes = env.restore()
            if changes.restore in ("conflict", "restore_failed"):
                return Verification(target, "inconclusive", f"not run: {changes.message}")
        known = self._failed_on_baseline(target)
        if not known:
            return self._verify(target)
        rerun = [nodeid for nodeid in self.smoke_nodeids if nodeid not in known]
        return replace(self._verify(target, rerun), known_failing=tuple(sorted(known)))

    def _failed_on_baseline(self, target: int) -> set[str]:
        """The paired cases whose baseline side failed on ``target`` in this session: re-running
        them after a rollback to ``target`` can only fail again, which would make the session exit
        21 over failures the gate already called environmental (DESIGN section 8)."""
        return {
            test.nodeid
            for test in self.book.records()
            if test.baseline is not None
            and test.baseline.get("version") == target
            and test.baseline.get("outcome") == "failed"
        }

    def _settle_env(self, verdict: Verdict) -> None:
        """The env changes' last word when no rollback restored the overlay: a gate that did not
        pass and published nothing (the draft failed or was inconclusive or interrupted, or its
        publish was refused) or whose numbered candidate is not the active version, and a failed
        preflight restore it (the active version must not keep a config nobody gated: README
        "Choices"); otherwise the change stays (the gate passed, or nothing was rolled back on
        purpose)."""
        env = self.env
        if env is None or env.changes.restore != "not_needed":
            return
        nothing_published = self.resources.candidate is None
        # A numbered candidate that is not the active version (a gate before its activation): the
        # active version runs the changed overlay, which only ever ran under the candidate.
        preflight = self.preflight
        candidate_not_active = (
            self.resources.published is None
            and self.resources.candidate is not None
            and preflight is not None
            and preflight.active_version != self.resources.candidate
        )
        not_live = nothing_published or candidate_not_active
        if self.preflight_failed or (verdict.decision != "pass" and not_live):
            env.restore()
        elif verdict.decision == "pass":
            env.keep("the gate passed: the env changes stay")
        else:
            env.keep(f"the gate ended {verdict.decision} and nothing was rolled back: the env changes stay")

    def _verify(self, target: int, nodeids: list[str] | None = None) -> Verification:
        candidate = self.resources.candidate
        assert candidate is not None
        return verification.verify_rollback(
            self.config,
            self.cfg,
            self.resources.require_connection(),
            nodeids=self.smoke_nodeids if nodeids is None else nodeids,
            target=target,
            candidate=candidate,
            workdir=self.evidence_dir,
            interruption=self.interruption,
        )
