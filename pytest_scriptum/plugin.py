"""pytest hooks and fixtures of pytest-scriptum: wiring only, the logic lives in the modules it calls.

Roles, like pytest-cov: every process that runs tests has a ``SmokeTests`` (specs, early
dispatch, expectations, report data); the process that owns the gate (the single process or
the xdist controller) also has a ``Controller`` (embedded server, preflight, gate, rollback,
bundle). xdist workers get the connection through ``workerinput`` and send their results back
in their reports, which the controller folds in as they arrive.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pytest_scriptum import hooks
from pytest_scriptum._controller import Controller
from pytest_scriptum._options import ScriptumConfig, add_options, resolve
from pytest_scriptum._records import REPORT_ATTR
from pytest_scriptum._session import Connection, ScriptumSession
from pytest_scriptum._smoke import SmokeTests, is_smoke, spec_of
from pytest_scriptum._summary import summary_lines
from pytest_scriptum.client import ScriptumClient
from pytest_scriptum.evidence import register_test_evidence
from pytest_scriptum.markers import MARKER_DOCS
from pytest_scriptum.runner import PinnedRunner, ThreadResult


@dataclass
class _State:
    cfg: ScriptumConfig
    session: ScriptumSession
    smoke: SmokeTests
    controller: Controller | None
    worker: bool
    pytest_session: pytest.Session | None = None


_STATE = pytest.StashKey[_State]()


def _state(config: pytest.Config) -> _State:
    return config.stash[_STATE]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKER_DOCS:
        config.addinivalue_line("markers", line)
    if config.option.help:
        return  # --help shows the options; a bad SCRIPTUM_* value must not hide them
    cfg = resolve(config)
    workerinput = getattr(config, "workerinput", None)
    worker = workerinput is not None
    if cfg.no_env and not worker:  # once, from the process that owns the session
        config.issue_config_time_warning(
            pytest.PytestWarning(
                "--scriptum-no-env: smoke threads run without env resolution; the runbook says keep it "
                "on (a smoke run without the effective env proves little about production)"
            ),
            stacklevel=2,
        )
    connection = None
    if workerinput is not None and workerinput.get("scriptum"):
        connection = Connection.from_workerinput(workerinput["scriptum"])
    session = ScriptumSession(cfg, connection)
    controller = None if worker else Controller(config, cfg, session)
    state = _State(
        cfg=cfg, session=session, smoke=SmokeTests(config, session), controller=controller, worker=worker
    )
    config.stash[_STATE] = state
    config.pluginmanager.register(_ReportHooks(state), "scriptum-report-hooks")
    register_test_evidence(config, session)
    if controller is not None and config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistController(controller), "scriptum-xdist-controller")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    state.session.close()
    if state.controller is not None:
        state.controller.close()


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = _state(config)
    cfg = state.cfg
    if cfg.endpoint is None and cfg.version is None:
        return None
    lines = cfg.header_lines()
    # Called after our (tryfirst) sessionstart ran the preflight: say how the wire format was found.
    preflight = state.controller.preflight if state.controller is not None else None
    if preflight is not None and preflight.api is not None and preflight.api.descriptors == "bundled":
        lines.append(
            "scriptum: descriptors: bundled (the server offers no reflection; requests use the plugin's "
            "own field numbers, checked by echo probes in preflight)"
        )
    return lines


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    state = _state(session.config)
    state.pytest_session = session
    if state.controller is not None:
        state.controller.start()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    _state(metafunc.config).smoke.generate_tests(metafunc)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    state = _state(config)
    state.smoke.collected(items)
    if state.controller is not None:
        state.controller.collected(items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    state = _state(session.config)
    if state.controller is not None and state.controller.preflight_failed:
        return True  # the checklist failed: no smoke test runs, the gate is inconclusive
    collection_failed = session.testsfailed and not session.config.option.continue_on_collection_errors
    if state.controller is not None and state.controller.gated and not state.worker and not collection_failed:
        state.smoke.dispatch()  # (pytest's own run loop stops at once after collection errors)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    state = _state(item.config)
    if state.worker:
        state.smoke.dispatch()  # tests xdist handed this worker since the last look


@pytest.fixture(autouse=True)
def _scriptum_smoke_run(request: pytest.FixtureRequest) -> None:
    """Runs the marker-declared thread of a smoke test during setup, even if the body is empty."""
    smoke = _state(request.config).smoke
    if is_smoke(request.node):
        smoke.refuse_if_unusable()
    if spec_of(request.node) is not None:
        request.getfixturevalue("smoke_thread")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    _state(item.config).smoke.check(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _state(item.config).smoke.annotate(item, call, report)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _state(session.config)
    state.session.cancel_outstanding()
    if state.controller is not None:
        state.controller.finish(session)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["scriptum"] = {"finished": True}


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    controller = _state(config).controller
    if controller is not None and controller.usage_error is not None:
        terminalreporter.write_line(f"ERROR: {controller.usage_error}", red=True, bold=True)
    if controller is None or controller.verdict is None:
        return
    terminalreporter.section("scriptum promotion gate", bold=True)
    color = {"pass": "green", "fail": "red", "inconclusive": "yellow"}[controller.verdict.decision]
    conn = controller.session.connection
    for i, line in enumerate(
        summary_lines(
            verdict=controller.verdict,
            script=controller.cfg.script,
            candidate=controller.cfg.version,
            endpoint=conn.label if conn else controller.cfg.endpoint,
            preflight=controller.preflight,
            rollback=controller.rollback,
            exit_code=controller.exit_code,
            evidence=controller.evidence_paths,
            verification_of=controller.cfg.verification_of,
        )
    ):
        terminalreporter.write_line(line, **({color: True, "bold": True} if i == 0 else {}))


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    # A platform fault raised in a test body (e.g. version drift in scriptum_runner.run) is the
    # platform's fault: show it as an error, as the gate counts it, not as a candidate failure.
    info = getattr(report, REPORT_ATTR, None) or {}
    errored = bool(info.get("platform_error") or info.get("test_error"))
    if report.when == "call" and report.failed and errored:
        return "error", "E", "ERROR"
    return None


class _ReportHooks:
    """Hooks whose arguments carry no config: one instance per config, registered at configure."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = self.state
        if state.pytest_session is None:
            return
        if state.controller is not None:
            state.controller.logreport(report, state.pytest_session)
        if state.pytest_session.shouldfail or state.pytest_session.shouldstop:
            state.session.cancel_outstanding()  # -x / --maxfail: do not wait for runs nobody will read

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.state.session.cancel_outstanding()


class _XdistController:
    """xdist controller hooks (optional: only called when pytest-xdist is active)."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        conn = self.controller.session.connection
        if conn is not None:
            node.workerinput["scriptum"] = conn.to_workerinput()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.controller.xdist_collected(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.controller.node_down(node, error)


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def scriptum_client(pytestconfig: pytest.Config) -> ScriptumClient:
    """The session's authenticated Scriptum client (scripts, versions, env, threads, rollback).

    One connection per process, on the transport chosen by --scriptum-transport.
    """
    return _state(pytestconfig).session.client


@pytest.fixture(scope="session")
def scriptum_http(pytestconfig: pytest.Config) -> httpx.Client:
    """An httpx.Client on the HTTP gateway with the authorization and organization headers set."""
    return _state(pytestconfig).session.http


@pytest.fixture(scope="session")
def scriptum_version(pytestconfig: pytest.Config) -> int:
    """The candidate version (int) every smoke thread is pinned to (--scriptum-version)."""
    version = _state(pytestconfig).cfg.version
    if version is None:
        pytest.fail(
            "no candidate version: pass --scriptum-version=N (or SCRIPTUM_VERSION / scriptum_version)",
            pytrace=False,
        )
    return version


@pytest.fixture(scope="session")
def scriptum_runner(pytestconfig: pytest.Config) -> PinnedRunner:
    """Pinned runner: ``run(input, *, script=None, timeout=None) -> ThreadResult``.

    Always pinned to the candidate version; a test can never drift to the active version.
    """
    return _state(pytestconfig).session.runner


@pytest.fixture
def smoke_thread(request: pytest.FixtureRequest) -> ThreadResult:
    """The ThreadResult of this test's marker-declared run (smoke_input / smoke_cases).

    Fields: thread_id, script, version, status (COMPLETED, FAILED, PAUSED, CANCELLED), output,
    error, error_code, steps (path "1", "1.0", ..., name, status, timing, error), env_keys,
    duration_s, finished_at.
    """
    return _state(request.config).smoke.thread_for(request.node)
