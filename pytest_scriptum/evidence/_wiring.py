"""Where the evidence writers meet pytest: one plugin object per test-running process, and one
call from the gate's owner at session finish. ``plugin.py`` and ``_controller.py`` call in here
and hold no evidence logic of their own.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator
from typing import Protocol

import pytest

from pytest_scriptum._options import ScriptumConfig
from pytest_scriptum._session import ScriptumSession
from pytest_scriptum._smoke import is_smoke, mismatches_of, result_of, spec_of
from pytest_scriptum.evidence import allure, junit
from pytest_scriptum.evidence.redaction import Redactor
from pytest_scriptum.gate import Verdict
from pytest_scriptum.markers import MarkerError, scriptum_options
from pytest_scriptum.preflight import Preflight
from pytest_scriptum.rollback import RollbackResult

__all__ = ["GateOwner", "TestEvidence", "publish_session_evidence", "register_test_evidence"]

_RECORDED = pytest.StashKey[bool]()


def _redactor(session: ScriptumSession) -> Redactor:
    conn = session.connection
    return Redactor([conn.token if conn is not None else None, session.cfg.token])


class TestEvidence:
    """Per smoke test: JUnit properties for tests without a thread, and Allure evidence."""

    __test__ = False  # not a pytest test class

    def __init__(self, session: ScriptumSession) -> None:
        self.session = session

    @property
    def cfg(self) -> ScriptumConfig:
        return self.session.cfg

    def _script(self, item: pytest.Item) -> str | None:
        spec = spec_of(item)
        if spec is not None and spec.options.script:
            return spec.options.script
        try:
            return scriptum_options(item).script or self.cfg.script
        except MarkerError:  # already reported at collection
            return self.cfg.script

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        # Before the teardown report copies item.user_properties (JUnit reads that report).
        if is_smoke(item):
            junit.ensure_test_properties(item, script=self._script(item), version=self.cfg.version)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        # The call report, or the setup report of a test that never reaches its call.
        final = call.when == "call" or (call.when == "setup" and report.failed)
        if final and not item.stash.get(_RECORDED, False) and is_smoke(item):
            item.stash[_RECORDED] = True
            if allure.allure_active(item.config):
                self._record_allure(item)
        return report

    def _record_allure(self, item: pytest.Item) -> None:
        spec, result = spec_of(item), result_of(item)
        try:
            allure.record_smoke_test(
                item.config,
                script=result.script if result else self._script(item),
                version=result.version if result else self.cfg.version,
                verification_of=self.cfg.verification_of,
                incident=self.cfg.incident,
                expectation=spec.expect if spec else None,
                smoke_input=spec.input if spec else None,
                result=result,
                mismatches=mismatches_of(item),
                redactor=_redactor(self.session),
            )
        except Exception as exc:  # evidence must never change a test's outcome
            warnings.warn(
                pytest.PytestWarning(f"scriptum: Allure evidence of {item.nodeid} not written: {exc!r}"),
                stacklevel=1,
            )


def register_test_evidence(config: pytest.Config, session: ScriptumSession) -> None:
    """Register the per-test evidence hooks (every process that runs tests)."""
    config.pluginmanager.register(TestEvidence(session), "scriptum-test-evidence")


class GateOwner(Protocol):
    """What the process that owns the gate knows at session finish (the controller)."""

    @property
    def config(self) -> pytest.Config: ...
    @property
    def cfg(self) -> ScriptumConfig: ...
    @property
    def session(self) -> ScriptumSession: ...
    @property
    def verdict(self) -> Verdict | None: ...
    @property
    def preflight(self) -> Preflight | None: ...
    @property
    def rollback(self) -> RollbackResult | None: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def started_at(self) -> str: ...
    @property
    def evidence_paths(self) -> dict[str, str]: ...


def publish_session_evidence(owner: GateOwner) -> None:
    """JUnit suite properties and the session's Allure files. Call from ``pytest_sessionfinish``
    (tryfirst) after the gate and the rollback, before junitxml writes its file."""
    verdict, cfg, config = owner.verdict, owner.cfg, owner.config
    if verdict is None:
        return
    redactor = _redactor(owner.session)
    conn = owner.session.connection
    endpoint = conn.label if conn is not None else cfg.endpoint
    properties = junit.suite_properties(
        verdict=verdict.decision,
        candidate_version=cfg.version,
        rollback=owner.rollback,
        rollback_target=owner.preflight.target if owner.preflight else None,
        incident=cfg.incident,
        verification_of=cfg.verification_of,
    )
    if junit.add_suite_properties(config, properties, redactor):
        owner.evidence_paths["junit"] = str(config.option.xmlpath)
    directory = allure.allure_dir(config)
    if directory is None or cfg.verification_of is not None:
        return  # the verification child's per-test results are in the parent's directory already
    facts = allure.SessionFacts(
        script=cfg.script,
        candidate_version=cfg.version,
        endpoint=endpoint,
        transport=cfg.transport,
        verdict=verdict,
        preflight=owner.preflight,
        rollback=owner.rollback,
        incident=cfg.incident,
        started_at=owner.started_at,
        exit_code=owner.exit_code,
    )
    patterns = dict(getattr(config.option, "allure_link_pattern", None) or [])
    allure.write_session_results(directory, facts, redactor, link_patterns=patterns)
    owner.evidence_paths["allure"] = str(directory)
