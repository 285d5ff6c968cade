"""Smoke tests in the process that runs them: specs, early dispatch, expectations, report records.

Runs on every process that runs tests (the single process, or each xdist worker for its own
tests). Markers are parsed once per test (``markers.item_markers``, kept in the item's stash).
Nothing here decides the gate: each smoke report carries a ``ReportRecord`` to whoever does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_scriptum import _compat
from pytest_scriptum._session.attempts import (
    AttemptRun,
    TestsOwnMistake,
    attempt_keys,
    collect,
    judge,
)
from pytest_scriptum._session.idle import SMOKE_FIXTURES
from pytest_scriptum._session.records import ReportRecord
from pytest_scriptum._session.resources import PlatformUnavailable, SessionResources
from pytest_scriptum.client import ScriptumError
from pytest_scriptum.contract_schema import contract_json_schema
from pytest_scriptum.evidence.junit import baseline_properties, repeat_properties, thread_properties
from pytest_scriptum.gate import Outcome, attempts_outcome, paired_outcome
from pytest_scriptum.markers import (
    CASE_PARAM,
    MarkerError,
    forget_parsed,
    report_marker_problem,
    scriptum_options,
    smoke_spec,
    validate_definition,
)
from pytest_scriptum.outcome import Attempt, PinnedRun, Repeats
from pytest_scriptum.runner import (
    Dispatcher,
    PlatformFailure,
    PlatformFault,
    RunRequest,
    ThreadResult,
    UnrequestedCancelError,
    interrupted_in_flight,
)
from pytest_scriptum.spec import ScriptumOptions, SmokeSpec

if TYPE_CHECKING:
    # expect loads jsonschema and the regex engine: imported where an expectation is checked, so
    # a session that selects no smoke test never loads them (DESIGN section 6).
    from pytest_scriptum import expect

__all__ = [
    "SMOKE_FIXTURES",
    "SmokeTests",
    "advisory_of",
    "declared_output_schema",
    "is_smoke",
    "mismatches_of",
    "repeats_of",
    "result_of",
    "script_of",
    "spec_of",
]

# Requesting these makes a test gate evidence; requesting only the pinned runner does once the
# body ran a thread with it (or its setup failed first: the test's own error, an error).
_EVIDENCE_BY_REQUEST = ("smoke_thread", "scriptum_client", "scriptum_http")
# The plugin's own fixtures that take smoke_thread; the body gets them per attempt (``extra``).
_THREAD_FIXTURES = frozenset({"smoke_baseline"})

RESULT_KEY = pytest.StashKey[ThreadResult]()
RUNS_BEFORE_KEY = pytest.StashKey[int]()  # the pinned runner's count in this thread before the test
ATTEMPTS_KEY = pytest.StashKey[int]()  # call phases so far (a rerun plugin repeats them)
USED_KEY = pytest.StashKey[bool]()  # the test used the platform: its reports are gate evidence
PLATFORM_ERROR_KEY = pytest.StashKey[str]()
TEST_ERROR_KEY = pytest.StashKey[str]()  # the test's own mistake found at run time: an error
MISMATCH_KEY: pytest.StashKey[Sequence[expect.Mismatch]] = pytest.StashKey()
DECLARED_KEY = pytest.StashKey[Mapping[str, Any]]()
ATTEMPT_RUNS_KEY = pytest.StashKey[list[AttemptRun]]()  # a case judged per attempt: its runs
BASELINE_RUNS_KEY = pytest.StashKey[list[AttemptRun]]()  # the same case's runs on the rollback target
BASELINE_KEY = pytest.StashKey[dict[str, Any]]()  # how the baseline side ended (the evidence's)
FAILURE_KEY = pytest.StashKey[str]()  # a case judged per attempt that failed: why, in one line
REPEATS_KEY = pytest.StashKey[Repeats]()  # a repeated case's judged attempts
# What one attempt found (a rerun plugin's next attempt starts without it; its runs stay, see
# ``_release_output``).
_PER_ATTEMPT_KEYS: tuple[pytest.StashKey[Any], ...] = (
    PLATFORM_ERROR_KEY,
    TEST_ERROR_KEY,
    MISMATCH_KEY,
    DECLARED_KEY,
    REPEATS_KEY,
    BASELINE_KEY,
    FAILURE_KEY,
)
RECORD_KEY = pytest.StashKey[dict[str, Any]]()  # the record dict the test's last report carries


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
    """Whether a selected test may use the platform (DESIGN section 3 "What counts"): it declares a
    pinned run (``smoke_input`` / ``smoke_cases``) or requests one of ``SMOKE_FIXTURES``. A test
    that only sits under a ``scriptum`` marker is not. Whether it *did* is ``SmokeTests.used``."""
    if spec_of(item) is not None:
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


def advisory_of(item: pytest.Item) -> bool:
    """Whether a test is ``scriptum(advisory=True)``: run and reported, never gate evidence."""
    spec = spec_of(item)
    options = spec.options if spec is not None else _options_of(item)
    return options is not None and options.advisory


def repeats_of(item: pytest.Item) -> Repeats | None:
    """A repeated case's judged attempts, once its call phase judged them (None otherwise)."""
    return item.stash.get(REPEATS_KEY, None)


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
        self.listing = _compat.listing_mode(config)  # a listing session runs nothing, needs no candidate

    # -- collection ------------------------------------------------------------------------
    def generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Validate every scriptum marker of a test; parametrize smoke_cases tests by case id."""
        try:
            cases = validate_definition(metafunc.definition, metafunc.definition.path)
        except MarkerError as exc:
            # Recorded: every mistake of the module is reported together, each with file and line.
            if report_marker_problem(metafunc.config, metafunc.definition, exc):
                return
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
        if self.listing is not None:
            return
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
            if cfg.has_candidate and cfg.script and script != cfg.script:
                return (
                    f"{item.nodeid} targets script {script!r}, but this session's candidate is {cfg.script} "
                    f"{cfg.candidate_label}: the gate and the rollback cover one script per session"
                )
            if spec is not None and options.min_pass is not None and options.repeat is None:
                if options.min_pass > cfg.repeat:
                    return (
                        f"{item.nodeid}: scriptum(min_pass={options.min_pass}) needs at least that many "
                        f"attempts, but --scriptum-repeat is {cfg.repeat}: give the test repeat=N or raise "
                        "--scriptum-repeat"
                    )
            if spec is not None and not script:
                return f"{item.nodeid}: no script to run: use @pytest.mark.scriptum('NAME') or --scriptum-script=NAME"  # noqa: E501
        if smoke and not cfg.has_candidate:
            return (
                f"{len(smoke)} smoke tests selected but no candidate version: pass --scriptum-version=N "
                "(or set SCRIPTUM_VERSION / scriptum_version) so every thread is pinned to it"
            )
        return None

    def critical_nodeids(self) -> list[str]:
        """The selected smoke tests marked ``scriptum(critical=True)`` (one never run is undecided)."""
        critical = []
        for item in self.items:
            spec = spec_of(item)
            options = spec.options if spec is not None else _options_of(item)
            if options is not None and options.critical:
                critical.append(item.nodeid)
        return critical

    def refuse_in_listing_mode(self, what: str) -> None:
        """``--setup-only`` executes fixtures: a platform fixture skips instead of contacting it."""
        if self.listing is not None:
            pytest.skip(f"{self.listing}: {what} does not contact the platform in a listing session")

    def refuse_if_unusable(self) -> None:
        """xdist worker: fail a smoke test's setup with the session's usage problem, or with why the
        controller will not let it use the platform (its preflight failed, the embedded server did
        not start), if any."""
        if self.usage_problem is not None:
            pytest.fail(f"usage error: {self.usage_problem}", pytrace=False)
        problem = self.resources.platform_problem()
        if problem is not None:
            pytest.fail(f"platform unavailable (not a candidate failure): {problem}", pytrace=False)

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
        if not self.cfg.has_candidate or self.listing is not None:
            return
        todo: list[tuple[str, RunRequest]] = []
        paired: list[tuple[str, RunRequest]] = []
        for item in items:
            spec = spec_of(item)
            if spec is not None and not spec.options.serial:
                attempts = self.attempts_of(spec)
                keys = _run_keys(item.nodeid, attempts[0] if attempts is not None else 1, rerun=False)
                request = self._request(spec)
                todo.extend((key, request) for key in keys)
                if self.paired:
                    paired.extend((_baseline_key(key), request) for key in keys)
        # One after the other, case by case: a candidate's run and its baseline's start together.
        if todo:
            self.resources.dispatcher.submit_all(todo)
        if paired:
            try:
                self.resources.baseline_dispatcher.submit_all(paired)
            except PlatformUnavailable:
                pass  # each case's setup says why (thread_for)

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
        attempts = self.attempts_of(spec)
        if attempts is not None:
            return self._attempts_for(item, spec, *attempts)
        dispatcher = self.resources.dispatcher
        problem: str | None = None
        try:
            # A rerun attempt runs its own thread: the early run belonged to the first attempt.
            if dispatcher.dispatched(item.nodeid) and RESULT_KEY not in item.stash:
                result = dispatcher.result(item.nodeid)
            else:
                result = dispatcher.run_inline(self._request(spec))
        except (PlatformFailure, UnrequestedCancelError) as exc:
            self._record(item, exc.result)  # the thread exists: its id and status go in the evidence
            problem = str(exc)
        except ScriptumError as exc:
            script = spec.options.script or self.cfg.script
            problem = _platform_error_text(exc, script, self.resources.candidate)
        except PlatformFault as exc:
            problem = str(exc)
        if problem is not None:  # failed outside the except: no chained exception in the report
            item.stash[PLATFORM_ERROR_KEY] = problem
            pytest.fail(f"platform error (not a candidate failure): {problem}", pytrace=False)
        self._record(item, result)
        if spec.expect.schema == "declared":
            item.stash[DECLARED_KEY] = self._declared_or_error(item, result)
        return result

    @property
    def paired(self) -> bool:
        """``--scriptum-baseline=paired``: every marker-declared case also runs on the rollback
        target (DESIGN section 8 "Paired baseline"; never in the verification re-run)."""
        return self.cfg.baseline == "paired" and self.cfg.verification_of is None

    def attempts_of(self, spec: SmokeSpec) -> tuple[int, int] | None:
        """``(N, K)`` of a case judged per attempt (``call_attempts``): a repeated one, or any case
        of a paired session (N = 1 unless repeated); None for a case that runs once, unpaired."""
        repeat = self.repeat_of(spec)
        if repeat is None and self.paired:
            return 1, 1
        return repeat

    def baseline_for(self, item: pytest.Item) -> ThreadResult:
        """The smoke_baseline fixture: the case's first run on the rollback target that settled
        (DESIGN section 8 "Paired baseline"). Fails the setup (an error) without
        ``--scriptum-baseline=paired``, or when every baseline run errored (the case is undecided)."""
        if self.cfg.verification_of is not None:
            # The verification re-run is pinned to the rollback target itself: its own run is the
            # baseline (our choice; DESIGN section 8 is silent), so a comparing body holds there.
            result = result_of(item)
            if result is not None:
                return result
        if not self.paired:
            pytest.fail(
                f"{item.nodeid}: the smoke_baseline fixture needs --scriptum-baseline=paired "
                "(or scriptum_baseline = paired) and a marker-declared run",
                pytrace=False,
            )
        runs = item.stash.get(BASELINE_RUNS_KEY, [])
        ran = [run.result for run in runs if run.result is not None and run.platform_error is None]
        if not ran:
            why = runs[0].platform_error if runs else "no baseline run"
            problem = f"the baseline run on v{self.resources.baseline_target} errored: {why}"
            item.stash[PLATFORM_ERROR_KEY] = problem
            pytest.fail(f"platform error (not a candidate failure): {problem}", pytrace=False)
        return ran[0]

    def repeat_of(self, spec: SmokeSpec) -> tuple[int, int] | None:
        """A marker-declared case's attempts and passes needed, ``(N, K)``, when it runs more than
        once: ``scriptum(repeat=N, min_pass=K)``, else ``--scriptum-repeat`` (K defaults to N)."""
        options = spec.options
        repeat = options.repeat if options.repeat is not None else self.cfg.repeat
        if repeat <= 1:
            return None
        return repeat, options.min_pass if options.min_pass is not None else repeat

    def _attempts_for(self, item: pytest.Item, spec: SmokeSpec, repeat: int, min_pass: int) -> ThreadResult:
        """smoke_thread of a repeated case: all N runs (concurrent), judged in the call phase
        (``call_attempts``); returns the first attempt that ran. Every attempt erroring is the
        platform's error at setup, as one run's would be."""
        rerun = ATTEMPT_RUNS_KEY in item.stash  # a rerun plugin's attempt runs new threads
        script = spec.options.script or self.cfg.script
        keys = _run_keys(item.nodeid, repeat, rerun=rerun)
        request = self._request(spec)
        baseline = self._baseline_dispatcher() if self.paired else None
        if isinstance(baseline, Dispatcher):  # both sides start before either is waited for
            baseline.submit_all((_baseline_key(key), request) for key in keys)
        runs = collect(
            self.resources.dispatcher,
            keys,
            request,
            lambda exc: _platform_error_text(exc, script, self.resources.candidate),
        )
        item.stash[ATTEMPT_RUNS_KEY] = runs
        if isinstance(baseline, Dispatcher):
            target = self.resources.baseline_target
            item.stash[BASELINE_RUNS_KEY] = collect(
                baseline,
                [_baseline_key(key) for key in keys],
                request,
                lambda exc: _platform_error_text(exc, script, target),
            )
        elif baseline is not None:  # no baseline dispatcher: every baseline run errored with why
            item.stash[BASELINE_RUNS_KEY] = [AttemptRun(i, None, baseline) for i in range(1, repeat + 1)]
        ran = [run.result for run in runs if run.result is not None and run.platform_error is None]
        if not ran:
            if repeat > 1:
                self._keep_repeats(item, repeat, min_pass, [_errored(run) for run in runs])
            first = runs[0].platform_error
            problem = f"all {repeat} attempts errored; attempt 1: {first}" if repeat > 1 else str(first)
            item.stash[PLATFORM_ERROR_KEY] = problem
            pytest.fail(f"platform error (not a candidate failure): {problem}", pytrace=False)
        self._record(item, ran[0])
        if spec.expect.schema == "declared":
            item.stash[DECLARED_KEY] = self._declared_or_error(item, ran[0])
        return ran[0]

    def call_attempts(self, item: pytest.Item) -> bool | None:
        """The call phase of a case judged per attempt (``pytest_pyfunc_call``): a repeated case,
        or any case of a paired session. The test's checks are judged against every attempt that
        ran (``attempts.judge``) and the case decided by ``gate.attempts_outcome``; when paired,
        the baseline's attempts the same way, and the two sides by ``gate.paired_outcome``. None
        for any other test (pytest calls it as usual)."""
        runs = item.stash.get(ATTEMPT_RUNS_KEY, None)
        spec = spec_of(item)
        attempts_of = self.attempts_of(spec) if spec is not None else None
        if runs is None or spec is None or attempts_of is None:
            return None
        repeat, min_pass = attempts_of
        body = _compat.test_body(item)
        self._refuse_thread_fixtures(item, repeat)
        baseline_runs = item.stash.get(BASELINE_RUNS_KEY, None)
        settled = [r.result for r in baseline_runs or () if r.result is not None and not r.platform_error]
        first_baseline = settled[0] if settled else None
        extra = {"smoke_baseline": first_baseline} if first_baseline is not None else {}
        candidate = self._judge_side(item, spec, runs, body, extra)
        outcome, line = self._decide(item, repeat, min_pass, candidate, keep=repeat > 1)
        details = [f"  attempt {a.index}: {a.outcome} - {a.error}" for a in candidate if a.error]
        if baseline_runs is not None:
            target = self.resources.baseline_target
            judged = self._judge_side(item, spec, baseline_runs, body, {})
            side, side_line = self._decide(item, repeat, min_pass, judged, keep=False)
            record = _baseline_record(target, side, side_line, judged, candidate=outcome)
            item.stash[BASELINE_KEY] = record
            fresh = baseline_properties(record)
            names = {name for name, _ in fresh}  # a rerun plugin's attempt replaces, never repeats
            item.user_properties[:] = [p for p in item.user_properties if p[0] not in names]
            item.user_properties.extend(fresh)
            kept = line if repeat > 1 else ""  # "3 of 5 < 4" says something; "0 of 1 < 1" does not
            outcome, line = paired_outcome(outcome, side, version=target, candidate_line=kept)
            if outcome != "passed":
                where = f"baseline v{target}"
                details += [f"  {where} attempt {a.index}: {a.outcome} - {a.error or 'ok'}" for a in judged]
        if outcome == "passed":
            return True
        label = "repeated case" if repeat > 1 else "case"
        if outcome == "failed":
            item.stash[FAILURE_KEY] = line  # the evidence's short error: the case's own line
            pytest.fail("\n".join([f"{label} failed: {line}", *details]), pytrace=False)
        item.stash[PLATFORM_ERROR_KEY] = line
        pytest.fail("\n".join([f"error (not a candidate failure): {line}", *details]), pytrace=False)

    def _refuse_thread_fixtures(self, item: pytest.Item, repeat: int) -> None:
        """A case judged per attempt whose body reads ``smoke_thread`` through a fixture of the
        test's own is the test's mistake: that fixture is set up once, with one attempt's result,
        so the body would judge that one result for every attempt and, paired, the candidate's
        result on the baseline's side (a regression read as environmental). DESIGN section 8 is
        silent on fixtures; an error is our choice, since neither a pass nor a failure is known."""
        readers = _compat.test_fixtures_requesting(item, "smoke_thread", own=_THREAD_FIXTURES)
        if not readers:
            return
        judged = f"each of its {repeat} attempts" if repeat > 1 else "the baseline's run"
        problem = (
            f"fixture {', '.join(readers)} reads smoke_thread: it is set up once, with one run's "
            f"result, so the body cannot judge {judged}; take smoke_thread as the test's own argument"
        )
        item.stash[TEST_ERROR_KEY] = problem
        pytest.fail(f"the test's own mistake (not a candidate failure): {problem}", pytrace=False)

    def _judge_side(
        self,
        item: pytest.Item,
        spec: SmokeSpec,
        runs: Sequence[AttemptRun],
        body: Callable[[Mapping[str, Any]], object] | None,
        extra: Mapping[str, Any],
    ) -> list[Attempt]:
        """Every attempt of one side judged by the test's checks (an errored one decides nothing)."""
        attempts: list[Attempt] = []
        problem: str | None = None
        for run in runs:
            if run.result is None or run.platform_error is not None:
                attempts.append(_errored(run))
                continue
            try:
                judged = judge(
                    spec.expect,
                    run.result,
                    declared_schema=item.stash.get(DECLARED_KEY, None),
                    body=body,
                    extra=extra,
                )
            except TestsOwnMistake as exc:
                problem = str(exc)
                break
            attempts.append(
                Attempt(run.index, judged.outcome, run.result.thread_id, run.result.status, judged.error)
            )
        if problem is not None:  # failed outside the except: no chained exception in the report
            item.stash[TEST_ERROR_KEY] = problem
            pytest.fail(f"the test's own mistake (not a candidate failure): {problem}", pytrace=False)
        return attempts

    def _decide(
        self, item: pytest.Item, repeat: int, min_pass: int, attempts: list[Attempt], *, keep: bool
    ) -> tuple[Outcome, str]:
        if keep:
            return self._keep_repeats(item, repeat, min_pass, attempts)
        counts = {kind: sum(a.outcome == kind for a in attempts) for kind in ("passed", "failed", "error")}
        return attempts_outcome(
            repeat, min_pass, passed=counts["passed"], failed=counts["failed"], errors=counts["error"]
        )

    def _baseline_dispatcher(self) -> Dispatcher | str:
        """The baseline's dispatcher, or why there is none (every baseline run then errored)."""
        try:
            return self.resources.baseline_dispatcher
        except PlatformUnavailable as exc:
            return str(exc)

    def _keep_repeats(
        self, item: pytest.Item, repeat: int, min_pass: int, attempts: list[Attempt]
    ) -> tuple[Outcome, str]:
        counts = {kind: sum(a.outcome == kind for a in attempts) for kind in ("passed", "failed", "error")}
        outcome, line = attempts_outcome(
            repeat, min_pass, passed=counts["passed"], failed=counts["failed"], errors=counts["error"]
        )
        repeats = Repeats(repeat, min_pass, tuple(attempts), line)
        item.stash[REPEATS_KEY] = repeats
        fresh = repeat_properties(repeats)
        names = {name for name, _ in fresh}
        item.user_properties[:] = [p for p in item.user_properties if p[0] not in names]
        item.user_properties.extend(fresh)
        return outcome, line

    def _record(self, item: pytest.Item, result: ThreadResult) -> None:
        item.stash[RESULT_KEY] = result
        fresh = thread_properties(result)
        names = {name for name, _ in fresh} | {"scriptum.error_code"}
        # A rerun attempt's run replaces the previous attempt's properties instead of repeating them.
        item.user_properties[:] = [p for p in item.user_properties if p[0] not in names]
        item.user_properties.extend(fresh)

    def set_up(self, request: pytest.FixtureRequest) -> None:
        """Every test's setup (the plugin's autouse fixture): a new attempt; a smoke test that may
        not use the platform fails here; a marker-declared run is taken (run now if it was not
        dispatched early), even if the body is empty. A listing session runs nothing."""
        if self.listing is not None:
            return  # --setup-only / --setup-plan: list the fixtures, run no thread
        item = request.node
        self.new_attempt(item)
        if is_smoke(item):
            self.refuse_if_unusable()
        if spec_of(item) is not None:
            request.getfixturevalue("smoke_thread")

    @staticmethod
    def shows_as_error(report: pytest.TestReport) -> bool:
        """A platform fault raised in a test body (e.g. version drift in ``scriptum_runner.run``) is
        the platform's fault: its failed call report shows as an error, as the gate counts it."""
        if report.when != "call" or not report.failed:
            return False
        record = ReportRecord.of(report)
        return record is not None and record.used and record.errored

    def new_attempt(self, item: pytest.Item) -> None:
        """At each attempt's setup (a rerun plugin repeats setup, call and teardown on the same
        item): forget the previous attempt's errors and expectations; its run is not reused."""
        stash = item.stash
        for key in _PER_ATTEMPT_KEYS:
            if key in stash:
                del stash[key]

    def _count_attempt(self, item: pytest.Item) -> int:
        attempts = item.stash.get(ATTEMPTS_KEY, 0) + 1
        item.stash[ATTEMPTS_KEY] = attempts
        if attempts > 1:  # JUnit says so on a rerun (per-test property, the last attempt's count)
            item.user_properties[:] = [p for p in item.user_properties if p[0] != "scriptum.attempts"]
            item.user_properties.append(("scriptum.attempts", attempts))
        return attempts

    def _declared_schema(self, script: str, version: int) -> dict[str, Any] | NoDeclaredOutputs | ValueError:
        """The version's declared output schema, read from GetScriptVersion once per process (a draft
        run, version 0 with ``--scriptum-version=draft``: the draft's, from GetDraftInfo)."""
        key = (script, version)
        if key not in self._declared:
            client = self.resources.client
            if version == 0 and self.cfg.draft:
                contract = client.get_draft_info(script).contract
            else:
                contract = client.get_script_version(script, version).contract
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
        if spec is None or result is None or self.attempts_of(spec) is not None:
            return  # a repeated or paired case is judged per attempt (call_attempts)
        from pytest_scriptum import expect

        try:
            mismatches = expect.check(
                spec.expect,
                status=result.status,
                output=result.output,
                error=result.error,
                declared_schema=item.stash.get(DECLARED_KEY, None),
            )
        except expect.ExpectationError as exc:  # the test is wrong (regex over its bound, bad schema)
            problem: str | None = str(exc)
        else:
            problem = None
        if problem is not None:  # failed outside the except: no chained exception in the report
            item.stash[TEST_ERROR_KEY] = problem
            pytest.fail(f"the test's own mistake (not a candidate failure): {problem}", pytrace=False)
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
        error = (
            item.stash.get(PLATFORM_ERROR_KEY, None)
            or item.stash.get(TEST_ERROR_KEY, None)
            or item.stash.get(FAILURE_KEY, None)
        )
        if call.excinfo is not None and call.excinfo.errisinstance((ScriptumError, PlatformFault)):
            platform = True
        elif call.excinfo is not None and interrupted_in_flight(call.excinfo.value):
            # e.g. pytest-timeout fired while the test waited for the platform: the platform's
            # slowness, never a verdict on the candidate (whatever the interrupting exception says)
            platform = True
            error = f"interrupted while a platform call was in flight: {call.excinfo.exconly()}"[:500]
        if result is not None:
            run = PinnedRun(
                script=result.script,
                version=result.version or None,  # a draft run has no version (the platform says 0)
                thread_id=result.thread_id,
                status=result.status,
                error_code=result.error_code or None,
                duration_s=result.duration_s,
            )
        else:
            run = PinnedRun(
                script=(options.script if options else None) or cfg.script, version=self.resources.candidate
            )
        return ReportRecord(
            critical=options.critical if options is not None else False,
            ran_thread=self.ran_thread(item),
            run=run,
            platform_error=platform,
            test_error=TEST_ERROR_KEY in item.stash,
            error=error,
            usage_error=self.usage_problem,
            advisory=options.advisory if options is not None else False,
            repeat=repeats.as_dict() if (repeats := repeats_of(item)) is not None else None,
            baseline=item.stash.get(BASELINE_KEY, None),
        )

    def before(self, item: pytest.Item) -> None:
        """Before a test's protocol: remember the pinned runner's count, to see whether it ran one."""
        item.stash[RUNS_BEFORE_KEY] = self.resources.runs_started_here()

    def ran_thread(self, item: pytest.Item) -> bool:
        """The test ran a thread pinned to the candidate: its marker-declared run, or its body's."""
        if result_of(item) is not None:
            return True
        return self.resources.runs_started_here() > item.stash.get(RUNS_BEFORE_KEY, 0)

    def used(self, item: pytest.Item, report: pytest.TestReport) -> bool:
        """Whether this test is gate evidence (decided once, then kept for its later phases): it
        declared a pinned run (it was meant to run one, even if that errored), requested
        ``smoke_thread`` / ``scriptum_client`` / ``scriptum_http``, ran a thread through
        ``scriptum_runner``, or requested the runner and failed at setup (a fixture error)."""
        if item.stash.get(USED_KEY, False):
            return True
        names = getattr(item, "fixturenames", ())
        setup_failed = report.when == "setup" and report.failed
        used = (
            spec_of(item) is not None
            or any(name in names for name in _EVIDENCE_BY_REQUEST)
            or ("scriptum_runner" in names and (self.ran_thread(item) or setup_failed))
        )
        if used:
            item.stash[USED_KEY] = True
        return used

    def annotate(self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
        """Attach the record to the reports of a test that may use the platform, saying whether it
        did so far (a worker that dies later leaves the controller a record to turn into an error)."""
        if self.listing is None and is_smoke(item):
            if call.when == "call":
                self._count_attempt(item)
            record = replace(self.record_of(item, call), used=self.used(item, report))
            item.stash[RECORD_KEY] = record.attach(report, same_as=item.stash.get(RECORD_KEY, None))
            if call.when == "teardown":
                self._release_output(item)

    @staticmethod
    def _release_output(item: pytest.Item) -> None:
        """After a test's last report: its runs' outputs and steps (its own, its attempts', its
        baseline's) have been checked, attached and reported, and nothing reads them again (a rerun
        attempt runs its own threads), so they are not kept until the session ends (DESIGN
        section 6: memory stays bounded by the outputs in use). The rest of each result stays: it
        says the test ran a thread. Its parsed markers go too (parsed again if a rerun asks)."""
        forget_parsed(item)
        result = item.stash.get(RESULT_KEY, None)
        if result is not None:
            item.stash[RESULT_KEY] = _without_output(result)
        for key in (ATTEMPT_RUNS_KEY, BASELINE_RUNS_KEY):  # kept: they say the case ran (a rerun's cue)
            runs = item.stash.get(key, None)
            if runs is not None:
                item.stash[key] = [
                    replace(run, result=_without_output(run.result)) if run.result is not None else run
                    for run in runs
                ]


def _without_output(result: ThreadResult) -> ThreadResult:
    """``result`` without its output and steps (see ``SmokeTests._release_output``)."""
    if result.output is None and not result.steps:
        return result
    return replace(result, output=None, steps=())


def _errored(run: AttemptRun) -> Attempt:
    """An attempt the platform errored: it decided nothing."""
    result = run.result
    return Attempt(
        run.index,
        "error",
        result.thread_id if result is not None else None,
        result.status if result is not None else None,
        run.platform_error,
    )


def _run_keys(nodeid: str, repeat: int, *, rerun: bool) -> list[str]:
    """The dispatcher keys of a case's candidate runs: its node id for one run (as an unpaired,
    unrepeated case's), one key per attempt when repeated, fresh keys for a rerun plugin's attempt."""
    return attempt_keys(nodeid, repeat, fresh=rerun) if repeat > 1 or rerun else [nodeid]


def _baseline_key(key: str) -> str:
    """The dispatcher key of a run's twin on the rollback target."""
    return f"{key}#baseline"


def _baseline_record(
    target: int | None, outcome: Outcome, line: str, attempts: list[Attempt], *, candidate: Outcome
) -> dict[str, Any]:
    """The bundle's ``tests[].baseline``: the rollback target's version, how the candidate's side
    and the baseline's side ended by the same checks, and the baseline's attempts' threads (DESIGN
    section 8 "Paired baseline")."""
    return {
        "version": target,
        "candidate_outcome": candidate,
        "outcome": outcome,
        "verdict": line,
        "attempts": [a.as_dict() for a in attempts],
    }
