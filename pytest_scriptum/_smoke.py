"""Smoke tests in one pytest process: specs at collection, early dispatch, expectations, report data.

Runs on every process that runs tests (the single process, or each xdist worker for its own
tests). Nothing here decides the gate: reports carry a plain ``scriptum`` dict to whoever does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from pytest_scriptum import expect
from pytest_scriptum._records import REPORT_ATTR
from pytest_scriptum._session import ScriptumSession
from pytest_scriptum.client import ScriptumError
from pytest_scriptum.markers import (
    CASE_PARAM,
    MarkerError,
    SmokeSpec,
    scriptum_options,
    smoke_spec,
    validate_definition,
)
from pytest_scriptum.runner import PlatformFault, RunRequest, ThreadResult

__all__ = ["SMOKE_FIXTURES", "SMOKE_MARKERS", "SmokeTests", "is_smoke"]

SMOKE_MARKERS = ("scriptum", "smoke_input", "smoke_expect", "smoke_cases")
SMOKE_FIXTURES = ("smoke_thread", "scriptum_runner")

SPEC_KEY = pytest.StashKey[SmokeSpec]()
RESULT_KEY = pytest.StashKey[ThreadResult]()
PLATFORM_ERROR_KEY = pytest.StashKey[str]()
MISMATCH_KEY = pytest.StashKey[Sequence[expect.Mismatch]]()


def is_smoke(item: pytest.Item) -> bool:
    """A smoke test carries a scriptum marker or uses the pinned runner / smoke_thread."""
    if any(item.get_closest_marker(name) for name in SMOKE_MARKERS):
        return True
    names = getattr(item, "fixturenames", ())
    return any(name in names for name in SMOKE_FIXTURES)


def _xdist_interactor(config: pytest.Config) -> Any | None:
    """xdist's worker-side plugin, which holds the queue of tests handed to this worker."""
    for plugin in config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "WorkerInteractor" and hasattr(plugin, "torun"):
            return plugin
    return None


def _xdist_pending(interactor: Any, items: Sequence[pytest.Item]) -> list[pytest.Item]:
    """Items this xdist worker was already told to run (its queue), in order.

    xdist hands tests to a worker in batches; peeking at the worker's queue lets it dispatch
    runs for the tests it already owns. Without that internal queue, runs start per test.
    """
    indices: list[int] = []
    current = getattr(interactor, "nextitem_index", None)
    if isinstance(current, int):
        indices.append(current)
    with interactor.torun.lock() as queue:
        indices.extend(i for i in queue if isinstance(i, int))
    return [items[i] for i in indices if 0 <= i < len(items)]


class SmokeTests:
    """The smoke-test side of one pytest process."""

    def __init__(self, config: pytest.Config, session: ScriptumSession) -> None:
        self.config = config
        self.session = session
        self._declared: dict[tuple[str, int], dict[str, Any] | None] = {}
        self._items: list[pytest.Item] = []  # the selected smoke tests
        self._all_items: list[pytest.Item] = []  # every selected test (xdist indices point here)
        self._worker = hasattr(config, "workerinput")
        self.usage_problem: str | None = None
        self._interactor: Any | None = None  # xdist's WorkerInteractor, found on first use

    # -- collection ------------------------------------------------------------------------
    def generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Validate every scriptum marker of a test; parametrize smoke_cases tests by case id."""
        try:
            cases = validate_definition(metafunc.definition, metafunc.definition.path)
        except MarkerError as exc:
            raise pytest.Collector.CollectError(str(exc)) from None
        if cases is not None:
            metafunc.fixturenames.append(CASE_PARAM)
            metafunc.parametrize(CASE_PARAM, cases, ids=[c.id for c in cases])

    def collected(self, items: list[pytest.Item]) -> None:
        """Attach specs to the selected items and check the session can run them.

        A problem is a UsageError in a single process. An xdist worker cannot raise one without
        crashing, so there every smoke test errors at setup with the same message and the
        controller turns the session's exit code into 4.
        """
        self._items = [item for item in items if is_smoke(item)]
        self._all_items = list(items)
        problem = self._usage_problem(self._items)
        if problem is not None:
            if not self._worker:
                raise pytest.UsageError(problem)
            self.usage_problem = problem

    def _usage_problem(self, smoke: list[pytest.Item]) -> str | None:
        cfg = self.session.cfg
        for item in smoke:
            try:
                spec = smoke_spec(item)
            except MarkerError as exc:  # validated at collection already; kept as a clean error
                return str(exc)
            if spec is not None:
                item.stash[SPEC_KEY] = spec
            script = (spec.options.script if spec else scriptum_options(item).script) or cfg.script
            if cfg.version is not None and cfg.script and script != cfg.script:
                return (
                    f"{item.nodeid} targets script {script!r}, but this session's candidate is {cfg.script} "
                    f"v{cfg.version}: the gate and the rollback cover one script per session"
                )
            if spec is not None and not script:
                return f"{item.nodeid}: no script to run: use @pytest.mark.scriptum('NAME') or --scriptum-script=NAME"  # noqa: E501
        if smoke and cfg.version is None:
            return (
                f"{len(smoke)} smoke tests selected but no candidate version: pass --scriptum-version=N "
                "(or set SCRIPTUM_VERSION / scriptum_version) so every thread is pinned to it"
            )
        return None

    def refuse_if_unusable(self) -> None:
        """xdist worker: fail a smoke test's setup with the session's usage problem, if any."""
        if self.usage_problem is not None:
            pytest.fail(f"usage error: {self.usage_problem}", pytrace=False)

    # -- run phase -------------------------------------------------------------------------
    def _request(self, spec: SmokeSpec) -> RunRequest:
        env = spec.options.env and not self.session.cfg.no_env
        return RunRequest(
            input=spec.input,
            script=spec.options.script or self.session.cfg.script,
            timeout=spec.options.timeout,
            env=env,
        )

    def dispatch(self, items: Sequence[pytest.Item] | None = None) -> None:
        """Start the runs of marker-declared, non-serial smoke tests in collection order."""
        if self.session.cfg.version is None:
            return
        if items is None:
            if self._worker:
                if self._interactor is None:
                    self._interactor = _xdist_interactor(self.config)
                items = _xdist_pending(self._interactor, self._all_items) if self._interactor else []
            else:
                items = self._items
        todo = [
            (item.nodeid, self._request(item.stash[SPEC_KEY]))
            for item in items
            if SPEC_KEY in item.stash and not item.stash[SPEC_KEY].options.serial
        ]
        if todo:
            self.session.dispatcher.submit_all(todo)

    def thread_for(self, item: pytest.Item) -> ThreadResult:
        """The smoke_thread fixture: this test's pinned run (dispatched early, or run now)."""
        spec = item.stash.get(SPEC_KEY, None)
        if spec is None:
            pytest.fail(
                f"{item.nodeid}: the smoke_thread fixture needs @pytest.mark.smoke_input(...) or "
                "@pytest.mark.smoke_cases(...) on the test",
                pytrace=False,
            )
        dispatcher = self.session.dispatcher
        problem: str | None = None
        try:
            if dispatcher.dispatched(item.nodeid):
                result = dispatcher.result(item.nodeid)
            else:
                result = dispatcher.run_inline(self._request(spec))
        except (ScriptumError, PlatformFault) as exc:
            problem = str(exc)
        if problem is not None:  # failed outside the except: no chained exception in the report
            item.stash[PLATFORM_ERROR_KEY] = problem
            pytest.fail(f"platform error (not a candidate failure): {problem}", pytrace=False)
        item.stash[RESULT_KEY] = result
        item.user_properties.extend(
            [
                ("scriptum.script", result.script),
                ("scriptum.version", result.version),
                ("scriptum.thread_id", result.thread_id),
                ("scriptum.status", result.status),
                ("scriptum.duration_ms", round(result.duration_s * 1000.0, 3)),
            ]
        )
        return result

    def _declared_schema(self, script: str, version: int) -> dict[str, Any] | None:
        key = (script, version)
        if key not in self._declared:
            text = self.session.client.get_version(script, version).output_schema_json
            self._declared[key] = json.loads(text) if text else None
        return self._declared[key]

    def check(self, item: pytest.Item) -> None:
        """Before the test body: the declared expectation, with a readable diff on mismatch."""
        spec = item.stash.get(SPEC_KEY, None)
        result = item.stash.get(RESULT_KEY, None)
        if spec is None or result is None:
            return
        declared = None
        if spec.expect.schema == "declared":
            problem: str | None = None
            try:
                declared = self._declared_schema(result.script, result.version)
            except ScriptumError as exc:
                problem = str(exc)
            if problem is not None:  # failed outside the except: no chained exception in the report
                item.stash[PLATFORM_ERROR_KEY] = problem
                pytest.fail(
                    f"platform error reading the declared schema (not a candidate failure): {problem}",
                    pytrace=False,
                )
        mismatches = expect.check(
            spec.expect,
            status=result.status,
            output=result.output,
            error=result.error,
            declared_schema=declared,
        )
        if mismatches:
            item.stash[MISMATCH_KEY] = mismatches
            pytest.fail(
                expect.format_failure(
                    mismatches, script=result.script, version=result.version, thread_id=result.thread_id
                ),
                pytrace=False,
            )

    def report_info(self, item: pytest.Item, call: pytest.CallInfo[None]) -> dict[str, Any]:
        """The plain dict every smoke report carries (crosses the xdist channel)."""
        cfg = self.session.cfg
        result = item.stash.get(RESULT_KEY, None)
        spec = item.stash.get(SPEC_KEY, None)
        options = spec.options if spec else scriptum_options(item)
        platform = PLATFORM_ERROR_KEY in item.stash
        if call.excinfo is not None and call.excinfo.errisinstance((ScriptumError, PlatformFault)):
            platform = True
        error = item.stash.get(PLATFORM_ERROR_KEY, None)
        return {
            "smoke": True,
            "critical": options.critical,
            "script": result.script if result else (options.script or cfg.script),
            "version": result.version if result else cfg.version,
            "thread_id": result.thread_id if result else None,
            "status": result.status if result else None,
            "duration_s": result.duration_s if result else None,
            "platform_error": platform,
            "error": error,
            "usage_error": self.usage_problem,
        }

    def annotate(self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
        """Attach the scriptum dict to a smoke test's report."""
        if is_smoke(item):
            setattr(report, REPORT_ATTR, self.report_info(item, call))


def result_of(item: pytest.Item) -> ThreadResult | None:
    """The marker-declared run of a test, if it ran."""
    return item.stash.get(RESULT_KEY, None)


def mismatches_of(item: pytest.Item) -> Sequence[expect.Mismatch]:
    """The expectation mismatches of a failed smoke test (empty if none)."""
    return item.stash.get(MISMATCH_KEY, ())


def spec_of(item: pytest.Item) -> SmokeSpec | None:
    """The smoke spec of a test, if it declares one."""
    return item.stash.get(SPEC_KEY, None)
