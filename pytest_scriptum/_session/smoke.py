"""Smoke tests in the process that runs them: specs, early dispatch, expectations, report records.

Runs on every process that runs tests (the single process, or each xdist worker for its own
tests). Markers are parsed once per test (``markers.item_markers``, kept in the item's stash).
Nothing here decides the gate: each smoke report carries a ``ReportRecord`` to whoever does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from pytest_scriptum import expect
from pytest_scriptum._session.records import ReportRecord
from pytest_scriptum._session.resources import SessionResources
from pytest_scriptum.client import ScriptumError
from pytest_scriptum.contract_schema import contract_json_schema
from pytest_scriptum.evidence.junit import thread_properties
from pytest_scriptum.markers import (
    CASE_PARAM,
    MARKER_NAMES,
    MarkerError,
    scriptum_options,
    smoke_spec,
    validate_definition,
)
from pytest_scriptum.outcome import PinnedRun
from pytest_scriptum.runner import (
    PlatformFailure,
    PlatformFault,
    RunRequest,
    ThreadResult,
    UnrequestedCancelError,
)
from pytest_scriptum.spec import ScriptumOptions, SmokeSpec

__all__ = [
    "SMOKE_FIXTURES",
    "SmokeTests",
    "declared_output_schema",
    "is_smoke",
    "mismatches_of",
    "result_of",
    "script_of",
    "spec_of",
]

SMOKE_FIXTURES = ("smoke_thread", "scriptum_runner")

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
    if any(item.get_closest_marker(name) for name in MARKER_NAMES):
        return True
    names = getattr(item, "fixturenames", ())
    return any(name in names for name in SMOKE_FIXTURES)


def spec_of(item: pytest.Item) -> SmokeSpec | None:
    """The smoke spec of a test, if it declares one (None too when its markers are wrong: that was
    reported at collection)."""
    try:
        return smoke_spec(item)
    except MarkerError:
        return None


def _options_of(item: pytest.Item) -> ScriptumOptions | None:
    try:
        return scriptum_options(item)
    except MarkerError:  # already reported at collection
        return None


def script_of(item: pytest.Item, default: str | None) -> str | None:
    """The script a test targets: its spec's or scriptum marker's, else ``default``."""
    spec = spec_of(item)
    options = spec.options if spec is not None else _options_of(item)
    return (options.script if options is not None else None) or default


def result_of(item: pytest.Item) -> ThreadResult | None:
    """The marker-declared run of a test, if it ran."""
    return item.stash.get(RESULT_KEY, None)


def mismatches_of(item: pytest.Item) -> Sequence[expect.Mismatch]:
    """The expectation mismatches of a failed smoke test (empty if none)."""
    return item.stash.get(MISMATCH_KEY, ())


class SmokeTests:
    """The smoke-test side of one pytest process."""

    def __init__(self, config: pytest.Config, resources: SessionResources, *, on_worker: bool) -> None:
        self.config = config
        self.resources = resources
        self.cfg = resources.cfg
        # (script, version) -> the declared output schema, or why there is none: read once per process.
        self._declared: dict[tuple[str, int], dict[str, Any] | NoDeclaredOutputs | ValueError] = {}
        self.items: list[pytest.Item] = []  # the selected smoke tests
        self.all_items: list[pytest.Item] = []  # every selected test (xdist indices point here)
        self._on_worker = on_worker
        self.usage_problem: str | None = None

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
        """Remember the selected smoke tests and check the session can run them.

        A problem is a UsageError in a single process. An xdist worker cannot raise one without
        crashing, so there every smoke test errors at setup with the same message and the
        gate's owner turns the session's exit code into 4.
        """
        self.items = [item for item in items if is_smoke(item)]
        self.all_items = list(items)
        problem = self._usage_problem(self.items)
        if problem is not None:
            if not self._on_worker:
                raise pytest.UsageError(problem)
            self.usage_problem = problem

    def _usage_problem(self, smoke: list[pytest.Item]) -> str | None:
        cfg = self.cfg
        for item in smoke:
            try:
                spec = smoke_spec(item)
                options = spec.options if spec is not None else scriptum_options(item)
            except MarkerError as exc:  # validated at collection already; kept as a clean error
                return str(exc)
            script = options.script or cfg.script
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
        env = spec.options.env and not self.cfg.no_env
        return RunRequest(
            input=spec.input,
            script=spec.options.script or self.cfg.script,
            timeout=spec.options.timeout,
            env=env,
        )

    def dispatch(self, items: Sequence[pytest.Item]) -> None:
        """Start the runs of the marker-declared, non-serial smoke tests among ``items``, in order."""
        if self.cfg.version is None:
            return
        todo = []
        for item in items:
            spec = spec_of(item)
            if spec is not None and not spec.options.serial:
                todo.append((item.nodeid, self._request(spec)))
        if todo:
            self.resources.dispatcher.submit_all(todo)

    def thread_for(self, item: pytest.Item) -> ThreadResult:
        """The smoke_thread fixture: this test's pinned run (dispatched early, or run now).

        Runs in the test's setup, so whatever keeps the run from judging the candidate (a platform
        error, a platform-marked failure, an unrequested cancel, a declared schema that does not
        exist) errors the test instead of failing it.
        """
        spec = spec_of(item)
        if spec is None:
            pytest.fail(
                f"{item.nodeid}: the smoke_thread fixture needs @pytest.mark.smoke_input(...) or "
                "@pytest.mark.smoke_cases(...) on the test",
                pytrace=False,
            )
        dispatcher = self.resources.dispatcher
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
            script = spec.options.script or self.cfg.script
            problem = _platform_error_text(exc, script, self.cfg.version)
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
        item.user_properties.extend(thread_properties(result))

    def _declared_schema(self, script: str, version: int) -> dict[str, Any] | NoDeclaredOutputs | ValueError:
        """The version's declared output schema, read from GetScriptVersion once per process."""
        key = (script, version)
        if key not in self._declared:
            contract = self.resources.client.get_script_version(script, version).contract
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
        spec = spec_of(item)
        result = result_of(item)
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

    def record_of(self, item: pytest.Item, call: pytest.CallInfo[None]) -> ReportRecord:
        """The record a smoke test's report carries (crosses the xdist channel)."""
        cfg = self.cfg
        result = result_of(item)
        spec = spec_of(item)
        options = spec.options if spec is not None else _options_of(item)
        platform = PLATFORM_ERROR_KEY in item.stash
        if call.excinfo is not None and call.excinfo.errisinstance((ScriptumError, PlatformFault)):
            platform = True
        if result is not None:
            run = PinnedRun(
                script=result.script,
                version=result.version,
                thread_id=result.thread_id,
                status=result.status,
                error_code=result.error_code or None,
                duration_s=result.duration_s,
            )
        else:
            run = PinnedRun(script=(options.script if options else None) or cfg.script, version=cfg.version)
        return ReportRecord(
            critical=options.critical if options is not None else False,
            run=run,
            platform_error=platform,
            test_error=TEST_ERROR_KEY in item.stash,
            error=item.stash.get(PLATFORM_ERROR_KEY, None) or item.stash.get(TEST_ERROR_KEY, None),
            usage_error=self.usage_problem,
        )

    def annotate(self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
        """Attach the record to a smoke test's report."""
        if is_smoke(item):
            self.record_of(item, call).attach(report)
