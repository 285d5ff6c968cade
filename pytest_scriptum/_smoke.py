"""Smoke tests in one pytest process: specs at collection, early dispatch, expectations, report data.

Runs on every process that runs tests (the single process, or each xdist worker for its own
tests). Nothing here decides the gate: reports carry a plain ``scriptum`` dict to whoever does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from pytest_scriptum import expect
from pytest_scriptum._records import REPORT_ATTR
from pytest_scriptum._session import ScriptumSession
from pytest_scriptum.client import ScriptumError
from pytest_scriptum.contract_schema import contract_json_schema
from pytest_scriptum.markers import (
    CASE_PARAM,
    MarkerError,
    SmokeSpec,
    scriptum_options,
    smoke_spec,
    validate_definition,
)
from pytest_scriptum.runner import (
    PlatformFailure,
    PlatformFault,
    RunRequest,
    ThreadResult,
    UnrequestedCancelError,
)

__all__ = ["SMOKE_FIXTURES", "SMOKE_MARKERS", "SmokeTests", "is_smoke"]

SMOKE_MARKERS = ("scriptum", "smoke_input", "smoke_expect", "smoke_cases")
SMOKE_FIXTURES = ("smoke_thread", "scriptum_runner")

SPEC_KEY = pytest.StashKey[SmokeSpec]()
RESULT_KEY = pytest.StashKey[ThreadResult]()
PLATFORM_ERROR_KEY = pytest.StashKey[str]()
TEST_ERROR_KEY = pytest.StashKey[str]()  # the test's own mistake found at run time: an error
MISMATCH_KEY = pytest.StashKey[Sequence[expect.Mismatch]]()
DECLARED_KEY = pytest.StashKey[Mapping[str, Any]]()


class NoDeclaredOutputs(Exception):
    """``schema="declared"`` on a version whose contract declares no output."""


def declared_output_schema(contract: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a version's declared output contract (``ScriptContract.outputs``, a dict
    of proto field names as ``ScriptVersion.contract`` holds it), by the documented mapping of
    ``pytest_scriptum.contract_schema``.

    Raises NoDeclaredOutputs when the contract declares no output, ValueError when the mapping
    cannot express it.
    """
    if not contract.get("outputs"):
        raise NoDeclaredOutputs("declares no output contract")
    return contract_json_schema(contract, "outputs")


def _platform_error_text(exc: ScriptumError, script: str | None, version: int | None) -> str:
    """What a platform error of a marker-declared run says. INVALID_ARGUMENT at CreateThread is
    the platform refusing the input (the version's input contract, or a wire problem: the plugin
    cannot tell which), so it is the test's error, never a verdict on the candidate."""
    if exc.code == "INVALID_ARGUMENT" and exc.method in ("CreateThread", ""):
        return f"the platform rejected the input of {script} v{version}: {exc}"
    return str(exc)


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
        # (script, version) -> the declared output schema, or why there is none: read once per process.
        self._declared: dict[tuple[str, int], dict[str, Any] | NoDeclaredOutputs | ValueError] = {}
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
        """The smoke_thread fixture: this test's pinned run (dispatched early, or run now).

        Runs in the test's setup, so whatever keeps the run from judging the candidate (a platform
        error, a platform-marked failure, an unrequested cancel, a declared schema that does not
        exist) errors the test instead of failing it.
        """
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
        except (PlatformFailure, UnrequestedCancelError) as exc:
            self._record(item, exc.result)  # the thread exists: its id and status go in the evidence
            problem = str(exc)
        except ScriptumError as exc:
            script = spec.options.script or self.session.cfg.script
            problem = _platform_error_text(exc, script, self.session.cfg.version)
        except PlatformFault as exc:
            problem = str(exc)
        if problem is not None:  # failed outside the except: no chained exception in the report
            item.stash[PLATFORM_ERROR_KEY] = problem
            pytest.fail(f"platform error (not a candidate failure): {problem}", pytrace=False)
        self._record(item, result)
        if spec.expect.schema == "declared":
            item.stash[DECLARED_KEY] = self._declared_or_error(item, result)
        return result

    def _record(self, item: pytest.Item, result: ThreadResult) -> None:
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
        if result.error_code:
            item.user_properties.append(("scriptum.error_code", result.error_code))

    def _declared_schema(self, script: str, version: int) -> dict[str, Any] | NoDeclaredOutputs | ValueError:
        """The version's declared output schema, read from GetScriptVersion once per process."""
        key = (script, version)
        if key not in self._declared:
            contract = self.session.client.get_script_version(script, version).contract
            try:
                self._declared[key] = declared_output_schema(contract)
            except (NoDeclaredOutputs, ValueError) as exc:
                self._declared[key] = exc
        return self._declared[key]

    def _declared_or_error(self, item: pytest.Item, result: ThreadResult) -> Mapping[str, Any]:
        """``schema="declared"``: the schema, or the test's error (setup) saying why there is none."""
        problem: str | None = None
        platform = False
        try:
            declared = self._declared_schema(result.script, result.version)
        except ScriptumError as exc:
            problem, platform = f"platform error reading the declared output contract: {exc}", True
        else:
            if isinstance(declared, NoDeclaredOutputs):
                problem = (
                    f"schema='declared': {result.script} v{result.version} declares no output contract "
                    "(its ScriptContract.outputs is empty); declare an output block or give the schema "
                    "in the test"
                )
            elif isinstance(declared, ValueError):
                problem = (
                    f"schema='declared': the output contract of {result.script} v{result.version} has no "
                    f"JSON Schema: {declared}"
                )
            else:
                return declared
        item.stash[PLATFORM_ERROR_KEY if platform else TEST_ERROR_KEY] = problem
        pytest.fail(problem, pytrace=False)

    def check(self, item: pytest.Item) -> None:
        """Before the test body: the declared expectation, with a readable diff on mismatch."""
        spec = item.stash.get(SPEC_KEY, None)
        result = item.stash.get(RESULT_KEY, None)
        if spec is None or result is None:
            return
        mismatches = expect.check(
            spec.expect,
            status=result.status,
            output=result.output,
            error=result.error,
            declared_schema=item.stash.get(DECLARED_KEY, None),
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
        error = item.stash.get(PLATFORM_ERROR_KEY, None) or item.stash.get(TEST_ERROR_KEY, None)
        return {
            "smoke": True,
            "critical": options.critical,
            "script": result.script if result else (options.script or cfg.script),
            "version": result.version if result else cfg.version,
            "thread_id": result.thread_id if result else None,
            "status": result.status if result else None,
            "error_code": (result.error_code or None) if result else None,
            "duration_s": result.duration_s if result else None,
            "platform_error": platform,
            "test_error": TEST_ERROR_KEY in item.stash,
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
