"""The one module that reaches into other projects' internals (pytest's ``_pytest``, pytest-xdist,
allure-pytest / allure-python-commons), as allure-pytest keeps its own ``compat.py``.

Every use says what it reaches for and the versions it was checked against; ``pyproject.toml``
bounds those dependencies above the newest checked version, and an import-linter contract forbids
every other module of the package to import ``_pytest``, ``xdist`` or ``allure_commons``.
Everything here degrades to "not available" (None / False) rather than raising, so a future
version that moved something loses an optimisation or an Allure detail, never a test run.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "AllureStep",
    "add_allure_steps",
    "add_junit_suite_properties",
    "allure_active",
    "allure_link_patterns",
    "allure_results_dir",
    "allure_test_start_ms",
    "junit_path",
    "junit_writing",
    "keep_allure_results",
    "last_failed_narrowing",
    "listing_mode",
    "mask_allure_results",
    "prefix_allure_title_path",
    "test_body",
    "test_fixtures_requesting",
    "wrap_debug_trace",
    "xdist_distributing",
    "xdist_own_worker_id",
    "xdist_pending_indices",
    "xdist_request_stop",
    "xdist_stopping",
    "xdist_worker_id",
]

# -- pytest (checked: pytest 8.0 - 9.2) ---------------------------------------------------------


def test_body(item: pytest.Item) -> Callable[[Mapping[str, Any]], object] | None:
    """A call of a test function's body with some fixture values replaced (``{"smoke_thread":
    result}``), as pytest's own ``pytest_pyfunc_call`` calls it (the function's own arguments,
    from ``Function._fixtureinfo.argnames``); None for an item that is not a plain sync function.
    Fixtures that depend on a replaced one keep the value they were set up with."""
    obj = getattr(item, "obj", None)
    funcargs = getattr(item, "funcargs", None)
    info = getattr(item, "_fixtureinfo", None)
    argnames = getattr(info, "argnames", None)
    if not callable(obj) or not isinstance(funcargs, dict) or argnames is None:
        return None
    if inspect.iscoroutinefunction(obj) or inspect.isasyncgenfunction(obj):
        return None  # pytest refuses these itself

    def call(replaced: Mapping[str, Any]) -> object:
        return obj(**{name: replaced.get(name, funcargs[name]) for name in argnames})

    return call


def test_fixtures_requesting(item: pytest.Item, name: str, *, own: frozenset[str]) -> tuple[str, ...]:
    """The fixtures in a test's closure that take fixture ``name`` as an argument, sorted, except
    ``name`` itself and the ``own`` ones (the plugin's); empty for an item without fixture info.
    Read from ``Function._fixtureinfo.name2fixturedefs`` (every definition of each name, an
    overridden one included). A fixture that calls ``request.getfixturevalue(name)`` is not seen:
    pytest records no static dependency for it."""
    info = getattr(item, "_fixtureinfo", None)
    defs = getattr(info, "name2fixturedefs", None)
    if not isinstance(defs, Mapping):
        return ()
    found = {
        fixture
        for fixture, fixturedefs in defs.items()
        if fixture != name
        and fixture not in own
        and any(name in tuple(getattr(d, "argnames", ())) for d in fixturedefs)
    }
    return tuple(sorted(found))


def wrap_debug_trace(
    config: pytest.Config, wrap: Callable[[Callable[[str], None]], Callable[[str], None]]
) -> bool:
    """Replace the writer of pytest's ``--debug`` file (``pytestdebug.log``) by ``wrap(writer)``;
    False without ``--debug``. The file is the writer of the plugin manager's root ``TagTracer``
    (set by ``_pytest.helpconfig`` before ``pytest_configure``; pluggy keeps it as ``_writer``,
    ``setwriter`` replaces it), which prints every hook call's arguments and results: a module's
    globals at collection, an output compared in an assertion."""
    root = config.trace.root
    writer = getattr(root, "_writer", None)
    if writer is None:
        return False
    root.setwriter(wrap(writer))
    return True


def junit_path(config: pytest.Config) -> str | None:
    """The ``--junitxml`` path as given (``config.option.xmlpath``, the junitxml plugin's option dest)."""
    path = getattr(config.option, "xmlpath", None)
    return str(path) if path else None


def _junit_xml(config: pytest.Config) -> Any | None:
    # The LogXML object junitxml stashes under ``_pytest.junitxml.xml_key`` (a StashKey[LogXML]) in
    # the process that writes the file (not on an xdist worker).
    try:
        from _pytest.junitxml import xml_key
    except ImportError:
        return None
    return config.stash.get(xml_key, None)


def junit_writing(config: pytest.Config) -> bool:
    """This process writes the ``--junitxml`` file (so it can take suite properties)."""
    return _junit_xml(config) is not None


def add_junit_suite_properties(config: pytest.Config, properties: Sequence[tuple[str, str]]) -> bool:
    """Add suite properties to this session's JUnit file; False when ``--junitxml`` is not in use.

    ``record_testsuite_property`` does not work under xdist, so the gate's owner adds them to
    pytest's ``LogXML`` object itself (``LogXML.add_global_property``), before junitxml writes the
    file at its sessionfinish.
    """
    xml = _junit_xml(config)
    if xml is None:
        return False
    for name, value in properties:
        xml.add_global_property(name, value)
    return True


# -- pytest's listing modes (checked: pytest 8.x) ------------------------------------------------

# pytest's option dests of the modes that list instead of running (DESIGN section 3 "Run modes"),
# with the flag a user typed (for messages).
_LISTING_OPTIONS = (
    ("collectonly", "--collect-only"),
    ("showfixtures", "--fixtures"),
    ("show_fixtures_per_test", "--fixtures-per-test"),
    ("markers", "--markers"),
    ("setupplan", "--setup-plan"),
    ("setuponly", "--setup-only"),
)


def listing_mode(config: pytest.Config) -> str | None:
    """The listing flag of this session (``--collect-only``, ``--fixtures``, ...), or None when
    it runs tests. A listing session needs no candidate, contacts no platform and has no gate."""
    for dest, flag in _LISTING_OPTIONS:
        if getattr(config.option, dest, False):
            return flag
    return None


def last_failed_narrowing(config: pytest.Config) -> bool:
    """``--lf`` / ``--ff``-less re-run of failures narrowed this session: the cacheprovider's
    ``LFPlugin`` (registered as "lfplugin") is ``active`` with a non-empty ``lastfailed``. It skips
    passed tests while collecting, without ``pytest_deselected``, so deselection counts miss them."""
    plugin = config.pluginmanager.get_plugin("lfplugin")
    if plugin is None or not getattr(config.option, "lf", False):
        return False
    return bool(getattr(plugin, "active", False) and getattr(plugin, "lastfailed", None))


# -- pytest-xdist (checked: pytest-xdist 3.6 - 3.8) ---------------------------------------------


def xdist_distributing(config: pytest.Config) -> bool:
    """This process is an xdist controller that will hand tests to workers: xdist's option dest
    ``dist`` is not "no" (``-n N`` sets it to "load") and the session is not ``--collect-only``
    (the conditions under which xdist registers its ``DSession``)."""
    return getattr(config.option, "dist", "no") != "no" and not config.option.collectonly


def _plugin_of_type(config: pytest.Config, type_name: str, attribute: str) -> Any | None:
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == type_name and hasattr(plugin, attribute):
            return plugin
    return None


def xdist_pending_indices(config: pytest.Config) -> list[int] | None:
    """On an xdist worker: the indices (into the worker's collected items) of the tests the
    controller already handed it, the running one first; None when that is not readable.

    xdist's ``xdist.remote.WorkerInteractor`` keeps them in ``nextitem_index`` and the queue
    ``torun`` (``TestQueue.lock()`` yields the underlying deque). Peeking lets a worker start the
    runs of every test it owns at once instead of one per test.
    """
    interactor = _plugin_of_type(config, "WorkerInteractor", "torun")
    if interactor is None:
        return None
    indices: list[int] = []
    current = getattr(interactor, "nextitem_index", None)
    if isinstance(current, int):
        indices.append(current)
    with interactor.torun.lock() as queue:
        indices.extend(i for i in queue if isinstance(i, int))
    return indices


def _dsession(config: pytest.Config) -> Any | None:
    # xdist registers its controller-side DSession under the name "dsession".
    return config.pluginmanager.getplugin("dsession")


def xdist_stopping(config: pytest.Config) -> bool:
    """On the xdist controller: xdist itself was told to stop (``-x`` / ``--maxfail`` reached on a
    worker, or our fail-fast): ``DSession.shouldstop`` is set."""
    dsession = _dsession(config)
    return dsession is not None and bool(getattr(dsession, "shouldstop", False))


def xdist_request_stop(config: pytest.Config, reason: str) -> None:
    """On the xdist controller: stop scheduling tests (``DSession.shouldstop``, which xdist's own
    ``--maxfail`` handling sets), so the workers are shut down after their current test."""
    dsession = _dsession(config)
    if dsession is not None:
        dsession.shouldstop = reason


def xdist_worker_id(node: Any) -> str:
    """The id ("gw0", ...) of the ``WorkerController`` xdist passes to its node hooks
    (``node.gateway.id``, the execnet gateway's id)."""
    return str(node.gateway.id)


def xdist_own_worker_id(config: pytest.Config) -> str:
    """An xdist worker's own id ("gw0", ...): ``workerinput["workerid"]``, the same id
    ``xdist_worker_id`` reads off the controller's node."""
    return str(getattr(config, "workerinput", {}).get("workerid", ""))


# -- allure-pytest (checked: allure-pytest / allure-python-commons 2.13 - 2.16) ----------------

_LISTENER = "allure_listener"  # the name allure-pytest registers its AllureListener under


def allure_active(config: pytest.Config) -> bool:
    """allure-pytest is installed and writing results (``--alluredir`` was given)."""
    return config.pluginmanager.get_plugin(_LISTENER) is not None


def allure_results_dir(config: pytest.Config) -> Path | None:
    """The results directory when allure-pytest is active (its option dest ``allure_report_dir``)."""
    path = getattr(config.option, "allure_report_dir", None)
    return Path(path).resolve() if path and allure_active(config) else None


def keep_allure_results(config: pytest.Config) -> None:
    """This run never cleans the Allure results directory: ``--clean-alluredir`` (allure-pytest's
    option dest ``clean_alluredir``, read in its ``pytest_configure``) applies once, in the parent
    (DESIGN section 4). Must run before allure-pytest's ``pytest_configure``."""
    if getattr(config.option, "clean_alluredir", False):
        config.option.clean_alluredir = False


def _mask_model(item: Any, mask: Callable[[str], str]) -> Any:
    """``item`` (an ``allure_commons.model2`` attrs object, list or string) with strings masked, in place."""
    if isinstance(item, str):
        return mask(item)
    if isinstance(item, list):
        item[:] = [_mask_model(entry, mask) for entry in item]
        return item
    for attribute in getattr(type(item), "__attrs_attrs__", ()):
        value = getattr(item, attribute.name, None)
        if value is not None and not isinstance(value, (int, float, bool)):
            setattr(item, attribute.name, _mask_model(value, mask))
    return item


def mask_allure_results(mask: Callable[[str], str]) -> Callable[[], None] | None:
    """Pass every string of every Allure test result and fixture container through ``mask`` just
    before allure-python-commons writes it (its ``report_result`` / ``report_container`` hooks,
    called first); returns the function that undoes it, or None without allure-python-commons.
    allure-pytest builds ``statusDetails`` from the exception itself, not from pytest's report."""
    try:
        commons = importlib.import_module("allure_commons")
    except ImportError:
        return None

    class _Masking:
        @commons.hookimpl(tryfirst=True)  # type: ignore[untyped-decorator]
        def report_result(self, result: Any) -> None:
            _mask_model(result, mask)

        @commons.hookimpl(tryfirst=True)  # type: ignore[untyped-decorator]
        def report_container(self, container: Any) -> None:
            _mask_model(container, mask)

    plugin = _Masking()
    commons.plugin_manager.register(plugin)
    return lambda: commons.plugin_manager.unregister(plugin)


def allure_link_patterns(config: pytest.Config) -> Mapping[str, str]:
    """``--allure-link-pattern=TYPE:PATTERN`` values (option dest ``allure_link_pattern``, a list of
    ``(type, pattern)`` pairs)."""
    return dict(getattr(config.option, "allure_link_pattern", None) or [])


def _allure_test(config: pytest.Config) -> Any | None:
    """allure-pytest's ``TestResult`` of the running test: ``AllureListener.allure_logger`` (an
    ``AllureReporter``) ``.get_test(None)`` is the innermost test in progress."""
    logger = getattr(config.pluginmanager.get_plugin(_LISTENER), "allure_logger", None)
    return logger.get_test(None) if logger is not None else None


def allure_test_start_ms(config: pytest.Config) -> int | None:
    """When Allure's timeline of the running test starts (ms since the epoch), if known."""
    test = _allure_test(config)
    start = getattr(test, "start", None) if test is not None else None
    return int(start) if start else None


def prefix_allure_title_path(config: pytest.Config, *prefix: str) -> bool:
    """Put ``prefix`` in front of the running test's Allure ``titlePath`` (allure-pytest sets it to
    the test's directories, file and classes in its ``pytest_runtest_setup``; Allure 3's default
    tree is built from it); False when there is no running test. No public API sets it."""
    test = _allure_test(config)
    if test is None or not isinstance(getattr(test, "titlePath", None), list):
        return False
    if test.titlePath[: len(prefix)] != list(prefix):
        test.titlePath[:0] = list(prefix)
    return True


@dataclass(frozen=True)
class AllureStep:
    """One Allure step, as plain data (``status``: passed, failed, broken or skipped)."""

    name: str
    status: str
    start_ms: int
    stop_ms: int
    message: str | None = None


def add_allure_steps(config: pytest.Config, steps: Sequence[AllureStep]) -> bool:
    """Append finished steps to the running test's Allure result; False when there is none.

    allure-pytest offers no public API for a step with given times, so the steps are
    ``allure_commons.model2.TestStepResult`` objects appended to the test result's ``steps``.
    """
    test = _allure_test(config)
    if test is None:
        return False
    model = importlib.import_module("allure_commons.model2")
    for step in steps:
        details = model.StatusDetails(message=step.message) if step.message else None
        test.steps.append(
            model.TestStepResult(
                name=step.name,
                status=step.status,
                statusDetails=details,
                stage="finished",
                start=step.start_ms,
                stop=step.stop_ms,
            )
        )
    return True
