"""pytest hooks and fixtures of pytest-scriptum: wiring only, the logic lives in ``_session``.

One role object per process, as pytest-cov: the single process (``Local``), the xdist controller
(``XdistController``) or an xdist worker (``XdistWorker``), see ``_session.xdist``. Every process
that runs tests has the smoke side (specs, early dispatch, expectations, report records); the
process that owns the gate also has a ``GateOwner`` (embedded server, preflight, gate, rollback,
outcome, evidence). xdist workers get the connection through ``workerinput`` (the embedded
server's addresses through the controller's rendezvous directory, once a worker collected a smoke
test) and send their results back in their reports, which the controller folds in as they arrive.

The role is created when the session first needs it (``_session.idle``): at configure when the
session is configured for the platform, else at the first test that declares a marker or requests
a platform fixture. Until then the hooks here do nothing, and nothing of the session layer (nor
grpc, httpx, protobuf or jsonschema) is loaded: a session that selects no smoke test pays only
for the options, the marker registry and the redactor (DESIGN section 6).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_scriptum import hooks
from pytest_scriptum._options import add_options, resolve
from pytest_scriptum._session import idle
from pytest_scriptum._session.redacting import Redacting
from pytest_scriptum._session.resources import SessionResources
from pytest_scriptum._session.xdist import REPORT_ATTR, Role, XdistController, XdistWorker
from pytest_scriptum.markers import MARKER_DOCS, CollectionProblems

if TYPE_CHECKING:
    # Only annotations: loading the plugin imports no transport code (DESIGN section 6); the
    # fixtures' values come from SessionResources, which imports the client on first use.
    import httpx

    from pytest_scriptum.client import ScriptumClient
    from pytest_scriptum.runner import PinnedRunner, ThreadResult

_RESOURCES = pytest.StashKey[SessionResources]()
_ROLE = pytest.StashKey[Role]()
_SESSION = pytest.StashKey[pytest.Session]()
_STARTED = pytest.StashKey[bool]()  # the role's session start ran


def _active(config: pytest.Config) -> Role | None:
    """The role, if the session layer is loaded (None: idle, the hook has nothing to do)."""
    return config.stash.get(_ROLE, None)


def _role(config: pytest.Config, *, start: bool = True) -> Role:
    """The role, loading the session layer first if the session is still idle; with ``start``, it
    also runs the session start it missed if woken after it (not while a module is collected: a
    UsageError there would become that module's collection error, not the session's exit 4)."""
    role = config.stash.get(_ROLE, None)
    if role is None:
        # Imported here, once: the session layer (smoke runs, gate, rollback, evidence) loads with
        # the first test that needs it, never for a session without one (``_session.idle``).
        from pytest_scriptum._session.activation import activate

        role = config.stash[_ROLE] = activate(config, config.stash[_RESOURCES])
    if start and _SESSION in config.stash and not config.stash.get(_STARTED, False):
        config.stash[_STARTED] = True
        role.start()
    return role


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKER_DOCS:
        config.addinivalue_line("markers", line)
    if config.getoption("help"):
        return  # --help shows the options; a bad SCRIPTUM_* value must not hide them
    cfg = resolve(config)
    worker = hasattr(config, "workerinput")
    if cfg.no_env and not worker:  # once, from the process that owns the session
        config.issue_config_time_warning(
            pytest.PytestWarning(
                "--scriptum-no-env: smoke threads run without env resolution; the runbook says keep "
                "it on (a smoke run without the effective env proves little about production)"
            ),
            stacklevel=2,
        )
    resources = XdistWorker.resources_for(config, cfg) if worker else SessionResources(cfg)
    config.stash[_RESOURCES] = resources
    if idle.needed_at_configure(config, cfg):
        _role(config)
    config.pluginmanager.register(_ReportHooks(config), "scriptum-report-hooks")
    config.pluginmanager.register(Redacting(config, resources), "scriptum-redacting")
    CollectionProblems.install(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    role = _active(config)
    if role is not None:
        role.close()
    elif _RESOURCES in config.stash:
        config.stash[_RESOURCES].close()


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    cfg = config.stash[_RESOURCES].cfg
    if cfg.endpoint is None and not cfg.has_candidate:
        return None
    # The preflight runs after collection (only when a smoke test is selected): its lines are
    # printed before the first test, not here.
    return cfg.header_lines(verbose=config.get_verbosity() > 0)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_SESSION] = session
    if _active(session.config) is not None:
        _role(session.config)  # its session start


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    role = _active(metafunc.config)
    if role is None and idle.declares_markers(metafunc.definition):
        # Its markers are validated (smoke_cases: parametrized) now; the session start waits for
        # the end of collection (pytest_collection_modifyitems).
        role = _role(metafunc.config, start=False)
    if role is not None:
        role.smoke.generate_tests(metafunc)


def pytest_itemcollected(item: pytest.Item) -> None:
    role = _active(item.config)
    if role is not None:
        role.item_collected(item)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    role = _active(config)
    if role is not None or any(idle.wakes_for(item) for item in items):
        # Woken now (a conftest may add the markers after collection) or during collection: the
        # session start it missed runs here, before the selection is read.
        _role(config).collected(items)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    # tryfirst: an xdist worker writes what it collected before xdist's own hook tells the controller.
    role = _active(session.config)
    if role is not None:
        role.collection_finished()


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    role = _active(session.config)
    return role.run_loop(session) if role is not None else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    role = _active(item.config)
    if role is not None:
        role.before_test(item)


@pytest.fixture(autouse=True)
def _scriptum_smoke_run(request: pytest.FixtureRequest) -> None:
    """Runs the marker-declared thread of a smoke test during setup, even if the body is empty."""
    role = _active(request.config)
    if role is not None:
        role.smoke.set_up(request)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    role = _active(item.config)
    if role is not None:
        role.smoke.check(item)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    # A repeated case's body runs once per attempt, against that attempt's thread (section 8).
    role = _active(pyfuncitem.config)
    return role.smoke.call_attempts(pyfuncitem) if role is not None else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    role = _active(item.config)
    if role is not None:
        role.smoke.annotate(item, call, report)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    role = _active(session.config)
    if role is not None:
        role.finish(session)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    role = _active(config)
    owner = role.owner if role is not None else None
    if owner is not None and owner.usage_error is not None:
        terminalreporter.write_line(f"ERROR: {owner.usage_error}", red=True, bold=True)
    if owner is None or owner.outcome is None:
        return
    terminalreporter.section("scriptum promotion gate", bold=True)
    color = {"pass": "green", "fail": "red", "inconclusive": "yellow"}[owner.outcome.verdict.decision]
    for i, line in enumerate(owner.summary_lines()):
        terminalreporter.write_line(line, **({color: True, "bold": True} if i == 0 else {}))


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    role = _active(config)
    if role is not None and role.smoke.shows_as_error(report):
        return "error", "E", "ERROR"
    return None


# -- xdist's hooks (called on the controller only when pytest-xdist distributes) ----------------


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    role = _active(node.config)
    if isinstance(role, XdistController):
        role.configure_node(node)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    role = _active(node.config)
    if isinstance(role, XdistController):
        role.node_collected(node, ids)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    role = _active(node.config)
    if isinstance(role, XdistController):
        role.node_down(node, error)


class _ReportHooks:
    """Hooks whose arguments carry no config: one instance per config, registered at configure."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        session = self.config.stash.get(_SESSION, None)
        if session is None:
            return
        role = _active(self.config)
        if role is None and hasattr(report, REPORT_ATTR):
            role = _role(self.config)  # an xdist worker's smoke test reported (e.g. its usage error)
        if role is not None:
            role.logreport(report, session)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        role = _active(self.config)
        if role is not None:
            role.collectreport(report)

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        role = _active(self.config)
        if role is not None:
            role.deselected(len(items))

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.config.stash[_RESOURCES].cancel_outstanding()


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def scriptum_client(pytestconfig: pytest.Config) -> ScriptumClient:
    """The session's authenticated Scriptum client (scripts, versions, env, threads, rollback).

    One connection per process, on the transport chosen by --scriptum-transport.
    """
    role = _role(pytestconfig)
    role.smoke.refuse_in_listing_mode("scriptum_client")
    return role.resources.client


@pytest.fixture(scope="session")
def scriptum_http(pytestconfig: pytest.Config) -> httpx.Client:
    """An httpx.Client on the HTTP gateway with the authorization and organization headers set."""
    role = _role(pytestconfig)
    role.smoke.refuse_in_listing_mode("scriptum_http")
    return role.resources.http


@pytest.fixture(scope="session")
def scriptum_version(pytestconfig: pytest.Config) -> int:
    """The candidate version (int) every smoke thread is pinned to (--scriptum-version, or the version
    this session published with --scriptum-publish); 0 while the candidate is the draft
    (--scriptum-version=draft), the version a draft run's ``ThreadResult`` reports."""
    resources = _role(pytestconfig).resources
    version = resources.candidate
    if version is None and resources.cfg.draft:
        version = 0
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
    role = _role(pytestconfig)
    role.smoke.refuse_in_listing_mode("scriptum_runner")
    return role.resources.runner


@pytest.fixture
def smoke_thread(request: pytest.FixtureRequest) -> ThreadResult:
    """The ThreadResult of this test's marker-declared run (smoke_input / smoke_cases).

    Fields: thread_id, script, version, status (COMPLETED, FAILED, PAUSED, CANCELLED), output,
    error, error_code, steps (path "1", "1.0", ..., name, status, timing, error), env_keys,
    duration_s, finished_at.
    """
    smoke = _role(request.config).smoke
    smoke.refuse_in_listing_mode("smoke_thread")
    return smoke.thread_for(request.node)


@pytest.fixture
def smoke_baseline(request: pytest.FixtureRequest, smoke_thread: ThreadResult) -> ThreadResult:
    """With ``--scriptum-baseline=paired``: the ThreadResult of the same case's run on the rollback
    target (same input and env resolution, started together with the candidate's; DESIGN section
    8). The body runs once with ``smoke_thread`` the candidate's result and once with it the
    baseline's, so its assertions judge both sides; here it can compare the two."""
    smoke = _role(request.config).smoke
    smoke.refuse_in_listing_mode("smoke_baseline")
    return smoke.baseline_for(request.node)
