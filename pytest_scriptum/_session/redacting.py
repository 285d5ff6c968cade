"""The one redactor applied to what pytest and its plugins write, not only to our own evidence files
(DESIGN section 4 "Secrets"): failure reports (the terminal's failure text, JUnit, allure-pytest's
capture attachments), Allure test results (``statusDetails`` and steps built from the exception
itself), log records (live log, captured log sections, ``--log-file``) and pytest's ``--debug``
file. The redactor is ``SessionResources.redactor``: the tokens and every secret env value this
process has read. The gate's owner reads the env in its preflight, after collection; an xdist worker
starts before that, so it reads the env itself (``ListEnvVars``, ``GetScriptEnv``) once, before
its first test, and the controller masks every worker report again as it arrives.

Only what is written is masked: expectations were compared on the real values before a report
exists.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import Any

import pytest

from pytest_scriptum import _compat
from pytest_scriptum._session.resources import SessionResources
from pytest_scriptum.evidence._files import mask_tree
from pytest_scriptum.evidence.redaction import Redactor

__all__ = ["Redacting", "redact_report"]

_log = logging.getLogger(__name__)


def redact_report(report: pytest.TestReport | pytest.CollectReport, redactor: Redactor) -> None:
    """Mask ``report``'s failure text, captured sections and user properties in place. A failure
    text that holds a secret becomes plain text (its terminal colours are lost, nothing else)."""
    if not redactor:
        return
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        path, line, reason = longrepr
        report.longrepr = (path, line, redactor.text(str(reason)))
    elif longrepr is not None:
        text = str(longrepr)
        if redactor.finds(text):
            report.longrepr = redactor.text(text)
    # Replaced only when something is masked: pytest keeps every report until the session ends,
    # and a copy per report of thousands would be memory spent on nothing (DESIGN section 6).
    if any(redactor.finds(body) for _, body in report.sections):
        report.sections = [(title, redactor.text(body)) for title, body in report.sections]
    if isinstance(report, pytest.TestReport) and any(
        isinstance(value, str) and redactor.finds(value) for _, value in report.user_properties
    ):
        report.user_properties = [
            (name, redactor.text(value) if isinstance(value, str) else value)
            for name, value in report.user_properties
        ]
        xfail = getattr(report, "wasxfail", None)
        if isinstance(xfail, str):
            setattr(report, "wasxfail", redactor.text(xfail))  # noqa: B010 (set by pytest's skipping)


class Redacting:
    """Per process: masks reports, Allure results, log records and the debug trace."""

    def __init__(self, config: pytest.Config, resources: SessionResources) -> None:
        self.config = config
        self.resources = resources
        self.started = time.time() - 1.0  # mtimes have coarse resolution on some filesystems
        self._worker_must_learn = hasattr(config, "workerinput")
        self._cached: tuple[tuple[object, ...], Redactor] | None = None
        self._undo: list[Callable[[], None]] = []
        undo_allure = _compat.mask_allure_results(self.mask)
        if undo_allure is not None:
            self._undo.append(undo_allure)
        self._trace: _HeldTrace | None = None
        _compat.wrap_debug_trace(config, self._hold_trace)
        self._install_record_factory()

    # The redactor is rebuilt only when what it knows changed (log records call it often).
    @property
    def redactor(self) -> Redactor:
        resources = self.resources
        conn = resources.connection
        key = (conn.token if conn is not None else None, resources.cfg.token, len(resources.secrets))
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, resources.redactor)
        return self._cached[1]

    def mask(self, text: str) -> str:
        return self.redactor.text(text)

    def _hold_trace(self, write: Callable[[str], None]) -> Callable[[str], None]:
        self._trace = _HeldTrace(write, self.mask)
        return self._trace

    def release_trace(self) -> None:
        """Write the held ``--debug`` text, masked; from now on it is written as it comes."""
        if self._trace is not None:
            self._trace.release()

    def close(self) -> None:
        """Undo what was installed (pytester runs many sessions in one process)."""
        self.release_trace()
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def _install_record_factory(self) -> None:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            redactor = self.redactor
            if redactor:
                _mask_record(record, redactor)
            return record

        logging.setLogRecordFactory(factory)

        def undo() -> None:
            if logging.getLogRecordFactory() is factory:
                logging.setLogRecordFactory(previous)

        self._undo.append(undo)

    # -- hooks ------------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        # trylast: the innermost wrapper, so every other plugin's wrapper (allure-pytest's
        # capture attachments, JUnit through the log report) sees the masked report.
        report = yield
        redact_report(report, self.redactor)
        return report

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        report = yield
        redact_report(report, self.redactor)
        return report

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        # A test starts after the preflight read the env (in an xdist controller too: workers run
        # tests only once every worker collected), so every secret value is known by now.
        if self._worker_must_learn:
            self._worker_must_learn = False
            self._learn_env()
        self.release_trace()

    def _learn_env(self) -> None:
        """An xdist worker about to run its first test of a gated session reads the env once."""
        resources, cfg = self.resources, self.resources.cfg
        if resources.connection is None or not cfg.script or cfg.version is None:
            return
        if _compat.listing_mode(self.config) is not None:
            return  # listing modes never contact the platform
        try:
            client = resources.client
            resources.secrets.learn({var.key: var.value for var in client.list_env_vars()})
            resources.secrets.learn(client.get_script_env(cfg.script).env)
        except Exception as exc:  # redaction must never fail a test; the controller masks again
            _log.debug("scriptum: this worker could not read the env to mask its values: %s", exc)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # An xdist controller: a worker's report is masked with what the worker knew (it may
        # have started before the preflight read the env); mask it again before the terminal and
        # JUnit (both plain hooks, called after this one) write it.
        if _compat.xdist_distributing(self.config):
            redact_report(report, self.redactor)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.release_trace()
        # After every writer of this session (and the verification re-run) is done: the Allure
        # results that xdist workers or a test body's allure.attach wrote before the secrets
        # were known are rewritten masked.
        alluredir = _compat.allure_results_dir(self.config)
        if alluredir is not None and not hasattr(self.config, "workerinput"):
            mask_tree(alluredir, self.mask, since=self.started)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.close()


class _HeldTrace:
    """The ``--debug`` file's writer: holds the text until the session knows its secrets (the
    trace prints a module's globals at collection, before the preflight read the env), then
    writes it masked; after ``release`` every line is masked and written as it comes."""

    def __init__(self, write: Callable[[str], None], mask: Callable[[str], str]) -> None:
        self._write = write
        self._mask = mask
        self._held: list[str] | None = []

    def __call__(self, text: str) -> None:
        if self._held is not None:
            self._held.append(text)
        else:
            self._write(self._mask(text))

    def release(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._write(self._mask("".join(held)))


def _mask_record(record: logging.LogRecord, redactor: Redactor) -> None:
    """Mask a log record's message (formatted now), its traceback and stack text."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it where it formats, not here
        return
    if redactor.finds(message):
        record.msg, record.args = redactor.text(message), ()
    if record.exc_info and record.exc_info[1] is not None:
        # The formatter uses exc_text when set, so the traceback is masked too.
        text = logging.Formatter().formatException(record.exc_info)
        if redactor.finds(text):
            record.exc_text = redactor.text(text)
    if record.stack_info and redactor.finds(record.stack_info):
        record.stack_info = redactor.text(record.stack_info)
