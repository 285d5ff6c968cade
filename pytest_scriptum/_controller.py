"""The process that owns the gate: the single pytest process, or the xdist controller.

It starts the embedded server, runs the preflight checklist before any test, folds every
smoke report into records, evaluates the gate once, rolls back at most once, sets the exit
code and writes the JSON bundle. Workers only run tests and annotate reports.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from pytest_scriptum._options import ScriptumConfig
from pytest_scriptum._records import REPORT_ATTR, RecordBook
from pytest_scriptum._session import EmbeddedServer, ScriptumSession, remote_connection
from pytest_scriptum._smoke import is_smoke
from pytest_scriptum._verification import run_verification
from pytest_scriptum.evidence import publish_session_evidence
from pytest_scriptum.evidence.bundle import build_bundle, utc_now, write_bundle
from pytest_scriptum.gate import GateConfig, Verdict, evaluate, failure_certain
from pytest_scriptum.preflight import Preflight, run_preflight
from pytest_scriptum.rollback import RollbackPlan, RollbackResult, Verification, execute

__all__ = ["Controller"]

# pytest's own exit codes that the gate never overrides (internal error, usage error).
_PYTEST_OWN = (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR)


class Controller:
    """Gate, preflight, rollback and the bundle for one session."""

    def __init__(self, config: pytest.Config, cfg: ScriptumConfig, session: ScriptumSession) -> None:
        self.config = config
        self.cfg = cfg
        self.session = session
        self.book = RecordBook()
        self.embedded: EmbeddedServer | None = None
        self.preflight: Preflight | None = None
        self.verdict: Verdict | None = None
        self.rollback: RollbackResult | None = None
        self.exit_code: int | None = None
        self.started_at = utc_now()
        self.crashed_workers: list[str] = []
        self.total_items: int | None = None
        self.finished_items = 0
        self.smoke_nodeids: list[str] = []
        self.fail_fast_reason: str | None = None
        self.usage_error: str | None = None
        self.interrupted = False
        self.evidence_paths: dict[str, str] = {}
        self.gate_config = GateConfig(
            min_pass_rate=cfg.min_pass_rate, min_tests=cfg.min_tests, max_errors=cfg.max_errors
        )

    @property
    def gated(self) -> bool:
        """A smoke session: a candidate version is given and tests will run."""
        return self.cfg.version is not None and not self.config.option.collectonly

    @property
    def verification(self) -> bool:
        """This session is the verification re-run of a rollback."""
        return self.cfg.verification_of is not None

    # -- session start ----------------------------------------------------------------------
    def start(self) -> None:
        """Connect (starting the embedded server if asked) and run the preflight checklist."""
        cfg = self.cfg
        if self.config.option.collectonly or cfg.endpoint is None:
            return
        if cfg.embedded:
            self.embedded = EmbeddedServer(cfg)
            self.session.connection = self.embedded.start()
        else:
            self.session.connection = remote_connection(cfg)
        if not self.gated:
            return
        if not cfg.script:
            raise pytest.UsageError(
                f"--scriptum-version={cfg.version} needs the script it belongs to: "
                "pass --scriptum-script=NAME "
                "or set scriptum_script / SCRIPTUM_SCRIPT"
            )
        assert cfg.version is not None
        self.preflight = run_preflight(
            self.session.client,
            script=cfg.script,
            candidate=cfg.version,
            explicit_target=cfg.rollback_to,
            require_env=cfg.require_env,
            check_target=not self.verification,
        )

    @property
    def preflight_failed(self) -> bool:
        """Whether the checklist failed (then no smoke test runs)."""
        return self.preflight is not None and not self.preflight.ok

    # -- during the run ---------------------------------------------------------------------
    def collected(self, items: list[pytest.Item]) -> None:
        """Single process: remember the selected smoke tests (for the verification re-run)."""
        self.total_items = len(items)
        self.smoke_nodeids = [item.nodeid for item in items if is_smoke(item)]

    def xdist_collected(self, ids: list[str]) -> None:
        """xdist controller: every worker collects the same ids; the first report is enough."""
        if self.total_items is None:
            self.total_items = len(ids)
            self.smoke_nodeids = list(ids)

    def logreport(self, report: pytest.TestReport, pytest_session: pytest.Session) -> None:
        """Fold one report in; trigger fail-fast once the gate can no longer pass."""
        self.book.add(report)
        info = getattr(report, REPORT_ATTR, None)
        if info and info.get("usage_error"):
            self.usage_error = str(info["usage_error"])
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
            self.session.cancel_outstanding()
            pytest_session.shouldstop = self.fail_fast_reason
            dsession = self.config.pluginmanager.getplugin("dsession")
            if dsession is not None:
                dsession.shouldstop = self.fail_fast_reason

    def node_down(self, node: Any, error: Any) -> None:
        """xdist: a worker that went down with an error, or without its output, crashed."""
        output = getattr(node, "workeroutput", {}) or {}
        if error is not None or (self.gated and "scriptum" not in output and not self.fail_fast_reason):
            self.crashed_workers.append(str(node.gateway.id))

    # -- session end ------------------------------------------------------------------------
    def finish(self, pytest_session: pytest.Session) -> None:
        """Gate, rollback, exit code and bundle, exactly once."""
        if self.usage_error is not None:
            pytest_session.exitstatus = pytest.ExitCode.USAGE_ERROR  # an xdist worker's usage error
            return
        if not self.gated or self.verdict is not None:
            return
        status = pytest_session.exitstatus
        if status in _PYTEST_OWN:
            return
        counts = self.book.counts()
        if status == pytest.ExitCode.INTERRUPTED and not self._stopped_on_purpose(pytest_session):
            # Ctrl-C: a human stopped the gate; half the evidence decides nothing, so nothing rolls
            # back, and the exit code stays pytest's own "interrupted".
            self.interrupted = True
            why = (
                "collection errors: no smoke test ran"
                if self._collection_failed()
                else "the session was interrupted before every smoke test finished"
            )
            self.verdict = Verdict("inconclusive", why, counts, self.gate_config)
        else:
            self.verdict = evaluate(
                counts,
                self.gate_config,
                preflight_failure=self.preflight.failure if self.preflight else None,
                crashed_workers=self.crashed_workers,
            )
        if not self.verification:
            self.config.hook.pytest_scriptum_gate_evaluated(verdict=self.verdict)
        if self.verdict.decision == "fail" and not self.verification:
            self.rollback = self._roll_back()
        elif self.verdict.decision == "pass":
            self.rollback = RollbackResult(
                mode=self.cfg.rollback,
                status="not_needed",
                message="the gate passed",
                script=self.cfg.script,
                from_version=self.cfg.version,
                to_version=self._target(),
                incident=self.cfg.incident,
            )
        self.exit_code = self._exit_code(int(status))
        pytest_session.exitstatus = self.exit_code
        self._write_bundle()
        publish_session_evidence(self)  # JUnit suite properties, Allure session files

    def _collection_failed(self) -> bool:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        errors = reporter.stats.get("error", []) if reporter is not None else []
        return any(isinstance(r, pytest.CollectReport) for r in errors)

    def _stopped_on_purpose(self, pytest_session: pytest.Session) -> bool:
        """-x / --maxfail (also xdist's) or fail-fast stopped the run, not a Ctrl-C."""
        dsession = self.config.pluginmanager.getplugin("dsession")
        return bool(
            self.fail_fast_reason
            or pytest_session.shouldfail
            or pytest_session.shouldstop
            or (dsession is not None and getattr(dsession, "shouldstop", False))
        )

    def _target(self) -> int | None:
        return self.preflight.target if self.preflight else None

    def _exit_code(self, pytest_status: int) -> int:
        assert self.verdict is not None
        if self.interrupted:
            return pytest_status
        if self.verdict.decision == "inconclusive":
            return 20
        if self.verdict.decision == "fail":
            return self.rollback.exit_code if self.rollback else 1
        # Gate passed; other (non-smoke) tests that failed still fail the run.
        return 1 if pytest_status == pytest.ExitCode.TESTS_FAILED and self._non_smoke_failed() else 0

    def _non_smoke_failed(self) -> bool:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return False
        failed = [r for key in ("failed", "error") for r in reporter.stats.get(key, [])]
        return any(getattr(r, "nodeid", None) not in self.book.records for r in failed)

    def _allowed(self, plan: RollbackPlan) -> str | None:
        answers = self.config.hook.pytest_scriptum_before_rollback(plan=plan)
        if any(answer is False for answer in answers):
            return "a pytest_scriptum_before_rollback hook returned False"
        return None

    def _roll_back(self) -> RollbackResult:
        cfg = self.cfg
        assert self.verdict is not None and cfg.script and cfg.version is not None
        # The rollback id makes our own entry in the history recognisable after a conflict or an
        # ambiguous answer: two sessions failing the same gate write the same words, never the same id.
        rollback_id = f"pytest-scriptum-{uuid.uuid4().hex}"
        plan = RollbackPlan(
            script=cfg.script,
            mode=cfg.rollback,
            from_version=cfg.version,
            to_version=self._target(),
            incident=cfg.incident,
            reason=f"pytest-scriptum gate failed for {cfg.script} v{cfg.version}: {self.verdict.reason}",
            rollback_id=rollback_id,
        )
        result = execute(plan, self.session.client, verify=self._verify, allowed=self._allowed)
        self.config.hook.pytest_scriptum_after_rollback(result=result)
        return result

    def _verify(self, target: int) -> Verification:
        cfg = self.cfg
        assert cfg.version is not None
        conn = self.session.require_connection()
        base = (
            cfg.evidence.parent if cfg.evidence else Path(tempfile.mkdtemp(prefix="scriptum-verification-"))
        )
        junit_path = getattr(self.config.option, "xmlpath", None)
        junit = None
        if junit_path:
            original = Path(junit_path)
            junit = original.with_name(f"{original.stem}.verification-v{target}{original.suffix or '.xml'}")
        alluredir = getattr(self.config.option, "allure_report_dir", None)
        verification = run_verification(
            cfg,
            conn,
            nodeids=self.smoke_nodeids,
            target=target,
            candidate=cfg.version,
            workdir=base,
            inipath=self.config.inipath,
            rootdir=self.config.rootpath,
            junit=junit,
            alluredir=Path(alluredir).resolve() if alluredir else None,
        )
        return verification

    def _write_bundle(self) -> None:
        if self.cfg.evidence is None or self.verdict is None or self.exit_code is None:
            return
        conn = self.session.connection
        bundle = build_bundle(
            role="verification" if self.verification else "candidate",
            script=self.cfg.script,
            candidate_version=self.cfg.version,
            endpoint=conn.label if conn else self.cfg.endpoint,
            transport=self.cfg.transport,
            started_at=self.started_at,
            finished_at=utc_now(),
            verdict=self.verdict,
            exit_code=self.exit_code,
            preflight=self.preflight.as_dict() if self.preflight else None,
            api=self.preflight.api.as_dict() if self.preflight and self.preflight.api else None,
            tests=[r.as_dict() for r in self.book.records.values()],
            rollback=self.rollback.as_dict() if self.rollback else None,
            incident=self.cfg.incident,
            verification_of=self.cfg.verification_of,
            secrets=(conn.token if conn else None,),
        )
        write_bundle(self.cfg.evidence, bundle)
        self.evidence_paths["bundle"] = str(self.cfg.evidence)

    def close(self) -> None:
        """Stop the embedded server (after everything else used it)."""
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
