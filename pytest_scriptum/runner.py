"""Pinned thread runs: ThreadResult, the PinnedRunner and the concurrent dispatcher.

Every run is pinned to the candidate version; a platform answer for any other version is a
``VersionDriftError`` (the platform's fault, never a candidate failure). So is a thread the
platform itself marks as failed for its own reasons (``error_code`` ``PLATFORM_*``: no free
worker, a crashed runtime, a restart) and a ``CANCELLED`` thread this session did not cancel.
Thread runs are remote I/O, so the dispatcher starts the runs of all marker-declared smoke tests
at once (bounded by ``--scriptum-concurrency``) and each test waits only for its own result.
The bound is an ``InFlightLimit``: fixed, or (``auto``) adaptive, additive increase while the
platform keeps up and multiplicative decrease when it pushes back, down to the runs the platform
holds when it refuses one with a retry hint (DESIGN section 6).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pytest_scriptum._limits import AUTO_CONCURRENCY_CAP, AUTO_CONCURRENCY_START, LARGE_OUTPUT_BYTES
from pytest_scriptum._output_spool import OutputSpool
from pytest_scriptum.client import ScriptumClient, ScriptumError
from pytest_scriptum.client._errors import is_pushback

if TYPE_CHECKING:
    # Annotations only: the records' 18 dataclasses are built when a client first returns one, not
    # when the plugin loads (a session without smoke tests never needs them; DESIGN section 6).
    from pytest_scriptum.client._records import RunRecord, Thread, ThreadOutput
    from pytest_scriptum.client._records import Step as StepRecord

__all__ = [
    "AUTO_CAP",
    "AUTO_START",
    "CONSECUTIVE_ERRORS_LIMIT",
    "CircuitOpenError",
    "Dispatcher",
    "InFlightLimit",
    "PinnedRunner",
    "PlatformFailure",
    "PlatformFault",
    "RunCancelledError",
    "RunRequest",
    "Step",
    "ThreadResult",
    "UnrequestedCancelError",
    "VersionDriftError",
    "interrupted_in_flight",
]

# After this many platform errors in a row the runner stops dispatching: hammering a sick
# platform helps nobody, and the gate goes inconclusive on the errors it already has.
CONSECUTIVE_ERRORS_LIMIT = 5

# --scriptum-concurrency=auto: the in-flight limit starts at AUTO_START and never exceeds AUTO_CAP
# (DESIGN section 6; README "Options").
AUTO_START = AUTO_CONCURRENCY_START
AUTO_CAP = AUTO_CONCURRENCY_CAP
# On pushback the limit is multiplied by this (TCP CUBIC's beta: a halving would idle a
# rate-limited platform for a quarter of the time between two pushbacks).
BACKOFF_FACTOR = 0.7
# "Latency well above the run's own baseline": a run's time outside the handler (queueing,
# transport: wall time less the platform's own duration) above both of these, against the least
# seen in this session.
LATENCY_FACTOR = 4.0
LATENCY_MARGIN_S = 1.0

# Thread.error_code prefix of the failures the platform marks as its own (DESIGN section 5).
PLATFORM_CODE_PREFIX = "PLATFORM_"

IN_FLIGHT_ATTR = "scriptum_platform_call_in_flight"
"""Set (True) on any exception that interrupted a platform call of ``PinnedRunner.run`` (a
pytest-timeout firing, a signal): the test was stopped while waiting for the platform, so it is an
error, never the candidate's failure (DESIGN section 3). Read with ``interrupted_in_flight``."""


def interrupted_in_flight(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) interrupted a platform call."""
    seen = 0
    while exc is not None and seen < 20:  # a bounded walk: chains can be cyclic
        if getattr(exc, IN_FLIGHT_ATTR, False):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


class PlatformFault(Exception):
    """A smoke run failed for a reason that is the platform's fault, not the candidate's."""


class VersionDriftError(PlatformFault):
    """The platform ran (or reported) a version other than the pinned one."""


class CircuitOpenError(PlatformFault):
    """Too many consecutive platform errors: no more runs are dispatched."""


class RunCancelledError(PlatformFault):
    """The run was cancelled before it finished (-x, --maxfail, fail-fast or Ctrl-C)."""


class PlatformFailure(PlatformFault):
    """The thread ended FAILED (or PAUSED) with an ``error_code`` the platform marks as its own
    (``PLATFORM_CAPACITY``, ``PLATFORM_RUNTIME_CRASH``, ``PLATFORM_RESTART``, ``PLATFORM_DEADLINE``).

    ``result`` is the thread as the platform reported it (for the evidence)."""

    def __init__(self, message: str, result: ThreadResult) -> None:
        super().__init__(message)
        self.result = result


class UnrequestedCancelError(PlatformFault):
    """The thread ended CANCELLED although this session never asked for it (someone else did, or
    the platform gave up on it): nothing about the candidate is known from it."""

    def __init__(self, message: str, result: ThreadResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Step:
    """One step of the thread (a ``context.step(name)`` of the handler, on the platform a DSL step).

    ``path`` is hierarchical: "1", "2", ... at the top, "1.0", "1.1" inside step "1". ``status``
    is the platform's step status (RUNNING, COMPLETED, FAILED, PAUSED, CANCELLED). Times are ms
    since the epoch on the platform's clock (0 when unknown); ``duration_ms`` is the platform's.
    """

    path: str
    name: str
    status: str
    started_at_ms: int
    finished_at_ms: int
    duration_ms: float
    error: str

    @classmethod
    def from_record(cls, step: StepRecord) -> Step:
        duration = step.duration_ms
        if not duration and step.finished_at_ms and step.started_at_ms:
            duration = step.finished_at_ms - step.started_at_ms
        return cls(
            path=step.path,
            name=step.name,
            status=step.status,
            started_at_ms=step.started_at_ms,
            finished_at_ms=step.finished_at_ms,
            duration_ms=float(max(duration, 0)),
            error=step.error,
        )


def decode_output(data: bytes) -> Any:
    """The thread's output: its ``output_data`` (UTF-8 JSON bytes) decoded, integers kept exact
    (``json`` reads ``12480`` as an int and ``12480.0`` as a float); None when there is none.

    Raises ValueError when the bytes are not UTF-8 JSON (the platform promises JSON).
    """
    if not data:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the thread's output_data is not UTF-8 JSON: {exc}") from None


def _duration_s(thread: Thread) -> float:
    # The platform's own clock: from start of execution (or acceptance, if it never started) to the end.
    start = thread.started_at_ms or thread.created_at_ms
    if not start or not thread.finished_at_ms:
        return 0.0
    return max(thread.finished_at_ms - start, 0) / 1000.0


@dataclass(frozen=True)
class ThreadResult:
    """The outcome of one pinned thread run as the platform reported it.

    ``version`` is the version it ran (0 for a run of the draft, ``--scriptum-version=draft``);
    ``status`` is COMPLETED, FAILED, PAUSED or CANCELLED (PENDING/RUNNING never reach a test);
    ``error_code`` is the platform's machine-readable class of ``error`` ("SCRIPT_ERROR",
    "SCRIPT_DEADLINE", "SCRIPT_OUTPUT_INVALID", ...; "" when there is none); ``output`` is the
    JSON-decoded ``output_data`` (None without output) and ``output_bytes`` its size in bytes;
    ``duration_s`` is measured by the platform; ``finished_at`` is the platform's clock in
    seconds since the epoch.
    """

    thread_id: str
    script: str
    version: int
    status: str
    output: Any
    error: str
    steps: tuple[Step, ...]
    env_keys: tuple[str, ...]
    duration_s: float
    error_code: str = ""
    request_id: str = ""
    input: Any = None
    finished_at: float | None = None  # platform clock, seconds since the epoch
    output_bytes: int = 0

    @classmethod
    def from_record(cls, record: RunRecord, input: Any = None) -> ThreadResult:
        """Build from the client's RunRecord. ValueError when the output is not UTF-8 JSON."""
        thread = record.thread
        result: ThreadOutput | None = record.output
        return cls(
            thread_id=thread.thread_id,
            script=thread.script_name,
            version=thread.version,
            status=thread.status,
            output=decode_output(result.output_data) if result is not None else None,
            error=thread.error,
            error_code=thread.error_code,
            steps=tuple(Step.from_record(s) for s in result.steps) if result is not None else (),
            env_keys=tuple(thread.env_keys),
            duration_s=_duration_s(thread),
            request_id=thread.metadata.get("scriptum.request_id", ""),
            input=input,
            finished_at=thread.finished_at_ms / 1000.0 if thread.finished_at_ms else None,
            output_bytes=result.output_total_bytes if result is not None else 0,
        )

    @property
    def platform_failure(self) -> bool:
        """Whether the platform marked the failure as its own (never the candidate's fault)."""
        return self.error_code.startswith(PLATFORM_CODE_PREFIX)


@dataclass(frozen=True)
class RunRequest:
    """What to run: a script's pinned version with an input."""

    input: Any
    script: str | None = None
    timeout: float | None = None
    env: bool | None = None


class _Circuit:
    """Counts platform errors in a row; open (no more runs) once there are ``limit`` of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._errors = 0
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        with self._lock:
            return self._errors >= self.limit

    def failed(self) -> None:
        with self._lock:
            self._errors += 1

    def succeeded(self) -> None:
        with self._lock:
            self._errors = 0


class PinnedRunner:
    """Runs threads pinned to the candidate version; there is no way to run "whatever is active"."""

    def __init__(
        self,
        client: ScriptumClient,
        *,
        version: int,
        script: str | None,
        timeout: float,
        resolve_env: bool = True,
        error_limit: int = CONSECUTIVE_ERRORS_LIMIT,
        draft: bool = False,
    ) -> None:
        self._client = client
        self._draft = draft  # every run is TestScriptDraft of the current draft (``version`` unused)
        self._version = version
        self._script = script
        self._timeout = timeout
        self._resolve_env = resolve_env
        self._circuit = _Circuit(error_limit)
        self._here = threading.local()  # runs started by the calling thread (a test's body)

    @property
    def started_here(self) -> int:
        """How many runs the calling thread has started (the dispatcher's pool threads count
        their own): tells whether a test body ran a pinned thread (DESIGN section 3 "What counts")."""
        count: int = getattr(self._here, "count", 0)
        return count

    @property
    def version(self) -> int:
        """The version every run is pinned to (0 for the draft)."""
        return self._version

    @property
    def draft(self) -> bool:
        """Whether every run tests the script's current draft (``--scriptum-version=draft``)."""
        return self._draft

    @property
    def _label(self) -> str:
        return "draft" if self._draft else f"v{self._version}"

    @property
    def default_script(self) -> str | None:
        """The script used when a run names none."""
        return self._script

    @property
    def circuit_open(self) -> bool:
        """Whether consecutive platform errors stopped further runs."""
        return self._circuit.open

    def run(
        self,
        input: Any,
        *,
        script: str | None = None,
        timeout: float | None = None,
        env: bool | None = None,
        cancel: threading.Event | None = None,
        on_pushback: Callable[[ScriptumError], object] | None = None,
        on_created: Callable[[str], object] | None = None,
        on_retry: Callable[[], object] | None = None,
    ) -> ThreadResult:
        """Run one thread pinned to the candidate and wait until it is settled.

        A thread that ends COMPLETED, FAILED (the script's own error or deadline) or PAUSED is
        returned, for the caller to judge. Platform trouble raises: ScriptumError (transport,
        auth, after the client's retries; INVALID_ARGUMENT when the platform refused the input,
        e.g. against the version's input contract), VersionDriftError (another version ran),
        PlatformFailure (the thread's ``error_code`` is ``PLATFORM_*``), UnrequestedCancelError
        (CANCELLED without this session asking), RunCancelledError (this session cancelled it).
        ``on_pushback`` hears of every pushback answer to the create call (``client.is_pushback``),
        ``on_created`` of the thread id once the platform accepted the run, ``on_retry`` is called
        before each retry of the create call (``ScriptumClient.run_thread``).
        """
        name = script or self._script
        if not name:
            raise ValueError(
                "no script to run: pass script=..., use @pytest.mark.scriptum('NAME') "
                "or set --scriptum-script / scriptum_script"
            )
        if self.circuit_open:
            raise CircuitOpenError(
                f"not dispatched: {self._circuit.limit} consecutive platform errors; "
                "the platform looks unhealthy"
            )
        resolve_env = self._resolve_env if env is None else env
        self._here.count = self.started_here + 1
        try:
            record = self._client.run_thread(
                name,
                self._version,
                input,
                load_env=resolve_env,
                timeout_s=timeout or self._timeout,
                cancel=cancel,
                draft=self._draft,
                on_pushback=on_pushback,
                on_created=on_created,
                on_retry=on_retry,
            )
        except ScriptumError as exc:
            if exc.code == "CANCELLED" and cancel is not None and cancel.is_set():
                raise RunCancelledError(f"run of {name} {self._label} cancelled") from None
            if exc.code != "INVALID_ARGUMENT":  # a refused input says nothing about the platform's health
                self._circuit.failed()
            raise
        except BaseException as exc:  # re-raised: only marked as "in flight"
            self._note_interruption(exc)
            raise
        try:
            result = ThreadResult.from_record(record, input)
            self._judge(result, name, cancel, ran_draft=record.thread.draft)
            if self._draft:
                result = replace(result, version=0)  # a draft run has no version: always 0
        except PlatformFault:
            self._circuit.failed()
            raise
        except ValueError as exc:  # output_data that is not JSON: the platform broke its promise
            self._circuit.failed()
            raise PlatformFault(
                f"thread {record.thread.thread_id} of {name} {self._label}: {exc}; this is a platform "
                "fault, not a candidate failure"
            ) from None
        self._circuit.succeeded()
        return result

    @staticmethod
    def _note_interruption(exc: BaseException) -> None:
        # Whatever escapes the platform call while it waits (pytest-timeout's Failed, a signal's
        # exception, the client's own errors) happened with the call in flight: mark it, so the
        # test's outcome is decided by that fact rather than by the exception's type or text.
        try:
            setattr(exc, IN_FLIGHT_ATTR, True)
        except (AttributeError, TypeError):  # an exception type with __slots__: nothing to mark
            pass

    def _judge(
        self, result: ThreadResult, name: str, cancel: threading.Event | None, *, ran_draft: bool = False
    ) -> None:
        """Raise when the settled thread says nothing about the candidate."""
        if self._draft:
            # The docs are silent on the version a TestScriptDraft thread reports (facts sheet 2.1):
            # the embedded server reports 0 ("no version") and marks the thread as a draft run. A
            # draft run is drift when it reports another script, or a published version (>= 1)
            # without the draft mark: then the platform ran something other than the draft.
            drifted = result.script != name or (result.version != 0 and not ran_draft)
        else:
            drifted = result.version != self._version or result.script != name
        if drifted:
            raise VersionDriftError(
                f"version drift: the run was pinned to {name} {self._label} but the platform reported "
                f"{result.script or '(no script)'} v{result.version} (thread {result.thread_id}); this is "
                "a platform fault, not a candidate failure"
            )
        if result.platform_failure:
            raise PlatformFailure(
                f"platform failure {result.error_code} in thread {result.thread_id} of {name} "
                f"{self._label}: {result.error or '(no message)'}; the platform marks it as its own, "
                "not a candidate failure",
                result,
            )
        if result.status == "CANCELLED":
            if cancel is not None and cancel.is_set():
                raise RunCancelledError(f"run of {name} {self._label} cancelled")
            why = f"{result.error_code or 'no error code'}: {result.error or 'no message'}"
            raise UnrequestedCancelError(
                f"thread {result.thread_id} of {name} {self._label} was CANCELLED, but this session "
                f"did not cancel it ({why}); nothing is known about the candidate from it",
                result,
            )


@dataclass
class _Slot:
    """One run's hold on the limit: the decrease epoch it started in, whether it was pushed back,
    accepted, and whether it holds room under the limit now (``held``: not while a refused run
    waits out the platform's retry hint)."""

    epoch: int
    pushed_back: bool = False
    accepted: bool = False
    held: bool = True


class InFlightLimit:
    """How many thread runs may be in flight at once: a fixed number, or adaptive (``"auto"``,
    ``--scriptum-concurrency=auto``; DESIGN section 6).

    Adaptive is AIMD, as TCP's congestion control. The limit starts at ``AUTO_START``. Until the
    first backoff ("slow start") every run the platform accepts without pushback adds 1, so the
    limit doubles with each round trip of the create call: a platform that keeps up is used fully
    in about one round of runs, and one that refuses runs (the usual pushback of a rate-limited
    platform, answered at once) stops the growth there. After a backoff every run that completes
    without pushback adds 1/limit (about 1 per round of runs). A pushback — RESOURCE_EXHAUSTED,
    UNAVAILABLE, a retry hint, or a run whose time outside the handler is well above this
    session's least (``LATENCY_FACTOR`` and ``LATENCY_MARGIN_S``: a platform that queues instead of
    refusing) — sets the limit to ``BACKOFF_FACTOR`` times the runs the platform had accepted and
    not finished (at most the limit), at most once per round: a run that started before the last
    decrease cannot cause another. While a pushed-back run still waits to
    get through, the limit does not grow (its retry must find the room the backoff made). The
    limit stays within 1..``AUTO_CAP``. Thread-safe.

    A refusal — a pushback of the create call that carries a retry hint (``pushback(refused=True)``:
    the platform did not start the run and said when to ask again) — is handled apart, in auto
    mode (issue 18, measured in benchmarks/README.md "session 5"):

    - The limit becomes the runs the platform had accepted and not finished, without the
      ``BACKOFF_FACTOR``: the refusal says exactly how many of ours the platform holds (it refuses
      beyond that count), so multiplying by 0.7 would idle 30% of that capacity until the additive
      increase climbed back, for several rounds (TCP needs the factor because a loss does not say
      how full the path was; a count-limited platform does). Runs that started before the decrease
      and whose acceptance is reported after the refusal (the answers cross) were accepted too: the
      limit follows them up, never above what the platform accepted. A pushback without a hint
      (UNAVAILABLE, latency) keeps the multiplicative decrease: it says the platform is in trouble,
      not how much it takes.
    - The refused run gives its slot back while it waits out the hint (the platform does not hold
      it, so another run may take the room), and takes a slot again before its retry (``resume``),
      ahead of every run not yet started: a refused run is never overtaken by a new one, so it
      cannot starve. The retry budget is the client's, unchanged (a hinted retry is not charged).
      Fixed mode keeps the slot: a number is the user's bound on runs in progress.

    The design is silent on how far to back off (DESIGN section 6 says only "backs off"); this
    is our reading, and "in flight never above K + 1 after the first refusal" still holds: every
    run in flight took a slot under a limit that is at most what the platform accepted, plus the
    additive probe of one run.
    """

    def __init__(self, concurrency: int | Literal["auto"] = "auto") -> None:
        fixed = None if concurrency == "auto" else concurrency
        if fixed is not None and (isinstance(fixed, bool) or not isinstance(fixed, int) or fixed < 1):
            raise ValueError(f"the in-flight limit must be 'auto' or an integer >= 1, got {concurrency!r}")
        self.mode = "auto" if fixed is None else "fixed"
        self._limit = float(AUTO_START if fixed is None else fixed)
        self.start = int(self._limit)
        self.cap = AUTO_CAP if fixed is None else fixed
        self._cond = threading.Condition()
        self._in_flight = 0
        self._epoch = 0  # decreases so far
        self._baseline_s: float | None = None
        self.max_reached = 0  # the most runs that were in flight at once
        self.max_limit = int(self._limit)
        self.pushbacks = 0  # every pushback answer seen
        self._pushed_back = 0  # runs the platform pushed back that have not got through (nor ended)
        self._accepted = 0  # runs in flight that the platform accepted (its own in-flight count)
        self._refused_epoch = -1  # the epoch a hinted refusal began (late acceptances raise the limit)
        self._retry_queue: deque[_Slot] = deque()  # refused runs waiting for a slot to retry, oldest first
        # The most runs in flight when a run started after the first backoff (the runs already in
        # flight when the platform pushed back were started under the old limit).
        self._max_after_backoff = 0

    @property
    def limit(self) -> int:
        """The limit now."""
        with self._cond:
            return int(self._limit)

    @property
    def backoffs(self) -> int:
        """How many times the limit was decreased."""
        with self._cond:
            return self._epoch

    @property
    def retries_waiting(self) -> int:
        """How many refused runs have waited out their hint and wait for a slot to retry."""
        with self._cond:
            return len(self._retry_queue)

    def acquire(self, cancel: threading.Event | None = None) -> _Slot | None:
        """Wait for room under the limit and take it; None when ``cancel`` was set meanwhile.
        A refused run waiting to retry (``resume``) goes first."""
        with self._cond:
            while self._in_flight >= int(self._limit) or self._retry_queue:
                if cancel is not None and cancel.is_set():
                    return None
                self._cond.wait(0.05 if cancel is not None else None)
            slot = _Slot(self._epoch)
            self._take(slot)
            return slot

    def resume(self, slot: _Slot, cancel: threading.Event | None = None) -> bool:
        """Before the retry of ``slot``'s refused run: wait for room again, ahead of runs not yet
        started and behind runs refused earlier, and take it. True at once when ``slot`` still
        holds its room; False when ``cancel`` was set meanwhile (the slot then holds nothing)."""
        with self._cond:
            if slot.held:
                return True
            self._retry_queue.append(slot)
            try:
                while self._in_flight >= int(self._limit) or self._retry_queue[0] is not slot:
                    if cancel is not None and cancel.is_set():
                        return False
                    self._cond.wait(0.05 if cancel is not None else None)
                self._take(slot)
                return True
            finally:
                self._retry_queue.remove(slot)
                self._cond.notify_all()

    def _take(self, slot: _Slot) -> None:
        slot.held = True
        self._in_flight += 1
        self.max_reached = max(self.max_reached, self._in_flight)
        if self._epoch:
            self._max_after_backoff = max(self._max_after_backoff, self._in_flight)

    def pushback(self, slot: _Slot, *, refused: bool = False) -> None:
        """The platform pushed back on ``slot``'s run: decrease (adaptive), once per round.
        ``refused``: the create call was refused with a retry hint (the class docstring says what
        changes then)."""
        with self._cond:
            self.pushbacks += 1
            if not slot.pushed_back:
                slot.pushed_back = True
                if not slot.accepted:  # one pushed back on its watch has got through already
                    self._pushed_back += 1
            self._decrease(slot, refused=refused and not slot.accepted)
            if refused and self.mode == "auto" and slot.held and not slot.accepted:
                slot.held = False  # not in flight on the platform while it waits: room for another
                self._in_flight -= 1
                self._cond.notify_all()

    def accepted(self, slot: _Slot) -> None:
        """The platform accepted ``slot``'s run (its create call answered): slow start grows here."""
        with self._cond:
            if not slot.accepted:
                slot.accepted = True
                self._accepted += 1
                if slot.pushed_back:
                    self._pushed_back -= 1  # it got through
            if self.mode != "auto":
                return
            if self._epoch == 0 and not self._pushed_back:
                self._limit = min(self._limit + 1.0, float(self.cap))
            elif self._refused_epoch == self._epoch and slot.epoch < self._epoch and not slot.pushed_back:
                # Started before the refusal and accepted while it was answered: the platform holds
                # it too, so the limit the refusal set counted it short.
                self._limit = max(self._limit, min(float(self._accepted), float(self.cap)))
            self.max_limit = max(self.max_limit, int(self._limit))
            self._cond.notify_all()

    def release(self, slot: _Slot, *, completed: bool, overhead_s: float | None = None) -> None:
        """``slot``'s run ended; ``completed``: the platform ran it (whatever the thread's own
        status), ``overhead_s``: its wall time less the platform's duration of the thread."""
        with self._cond:
            if slot.held:
                slot.held = False
                self._in_flight -= 1
            if slot.pushed_back:
                if not slot.accepted:
                    self._pushed_back -= 1  # it never got through
            elif self.mode == "auto" and completed:
                if overhead_s is not None and self._slow(overhead_s):
                    self._decrease(slot)  # this run still counts as one the platform took
                elif self._pushed_back or self._epoch == 0:
                    pass  # a pushed-back run still waits; or slow start, which grows on acceptance
                else:
                    self._limit = min(self._limit + 1.0 / max(self._limit, 1.0), float(self.cap))
                self.max_limit = max(self.max_limit, int(self._limit))
            if slot.accepted:
                self._accepted -= 1
            self._cond.notify_all()

    def _slow(self, overhead_s: float) -> bool:
        baseline = self._baseline_s
        if baseline is None or overhead_s < baseline:
            self._baseline_s = max(overhead_s, 0.0)
            return False
        return overhead_s > max(LATENCY_FACTOR * baseline, baseline + LATENCY_MARGIN_S)

    def _decrease(self, slot: _Slot, *, refused: bool = False) -> None:
        if self.mode != "auto" or slot.epoch != self._epoch:
            return  # fixed, or this run started before the last decrease: one per round
        self._epoch += 1
        # From what the platform took, not from the limit: in slow start the limit can run far
        # past the platform's capacity before the first refusal comes back (TCP: ssthresh is half
        # the flight size). The runs it refused then wait their hint and must find room.
        base = min(self._limit, float(max(self._accepted, 1)))
        if refused:  # the platform's own count (class docstring)
            self._refused_epoch = self._epoch
            self._limit = max(1.0, float(int(base)))
        else:
            self._limit = max(1.0, float(int(base * BACKOFF_FACTOR)))

    def record(self) -> dict[str, Any]:
        """The bundle's ``concurrency`` object: ``mode`` ("auto"/"fixed"), the ``start``ing limit,
        the ``cap``, the highest limit (``max_limit``), the most runs in flight at once
        (``max_reached``; ``max_reached_after_backoff``: the most in flight when a run started after
        the first backoff, 0 without one),
        the ``backoffs``, the ``pushbacks`` answered and the ``final`` limit."""
        with self._cond:
            return {
                "mode": self.mode,
                "start": self.start,
                "cap": self.cap,
                "max_limit": self.max_limit,
                "max_reached": self.max_reached,
                "max_reached_after_backoff": self._max_after_backoff,
                "backoffs": self._epoch,
                "pushbacks": self.pushbacks,
                "final": int(self._limit),
            }


class Dispatcher:
    """Starts runs early on a pool bounded by an ``InFlightLimit``; each test later takes its own
    result. ``concurrency``: a fixed limit, or ``"auto"`` for the adaptive one.

    Submitted runs wait in a queue (collection order) and go to the pool only while fewer than the
    pool's size are started and unfinished, so that the pool can always keep every worker busy;
    a test that asks for a run still queued starts it at once. A pool future holds a condition
    variable (a lock and a deque: about 1 KB), so a session of thousands of smoke tests created
    thousands of them at its first test and held them (issue 18, memory); the queue holds a
    request per run. All the runs of one round share one cancel event (``cancel_outstanding``
    cancels every outstanding run, then starts a new round).
    """

    def __init__(
        self, runner: PinnedRunner, concurrency: int | Literal["auto"], *, limit: InFlightLimit | None = None
    ) -> None:
        self._runner = runner
        # ``limit``: shared with another dispatcher (the paired baseline's runs count against the
        # same in-flight limit as the candidate's: one load on the platform, DESIGN section 8).
        self.limit = limit if limit is not None else InFlightLimit(concurrency)
        self._pool = ThreadPoolExecutor(max_workers=self.limit.cap, thread_name_prefix="scriptum-run")
        self._runs: dict[str, tuple[Future[ThreadResult], threading.Event]] = {}
        # Submitted and not yet given to the pool: keys in order (a key whose test started it
        # out of turn stays in the deque and is skipped), requests by key.
        self._order: deque[str] = deque()
        self._queued: dict[str, RunRequest] = {}
        self._unfinished = 0  # given to the pool and not finished
        self._cancel = threading.Event()  # this round's: see the class docstring
        self._cancelled: set[str] = set()  # queued keys cancel_outstanding cancelled
        # Keys whose result a test took: the run is forgotten (its output is the test's now, and a
        # session of thousands of runs must not hold every output here until it ends).
        self._taken: set[str] = set()
        self._waiting: set[str] = set()  # keys whose test waits for the result now
        self._spool = OutputSpool()
        self._spooled: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, key: str, request: RunRequest) -> None:
        """Start the run for ``key`` unless it was already started (idempotent)."""
        with self._lock:
            if self._closed or self._dispatched_locked(key):
                return
            self._order.append(key)
            self._queued[key] = request
            self._fill()

    def _fill(self) -> None:
        """Give queued runs to the pool while it has an idle worker for them (under the lock)."""
        while self._order and self._unfinished < self.limit.cap and not self._closed:
            key = self._order.popleft()
            request = self._queued.pop(key, None)
            if request is not None:  # else its test started it already
                self._start(key, request)

    def _start(self, key: str, request: RunRequest) -> None:
        """Give one run to the pool (under the lock)."""
        self._unfinished += 1
        cancel = self._cancel
        future = self._pool.submit(self._run, key, request, cancel)
        self._runs[key] = (future, cancel)

    def submit_all(self, requests: Iterable[tuple[str, RunRequest]]) -> None:
        """Submit in the given (collection) order."""
        for key, request in requests:
            self.submit(key, request)

    def dispatched(self, key: str) -> bool:
        """Whether a run for ``key`` was started early."""
        with self._lock:
            return self._dispatched_locked(key)

    def _dispatched_locked(self, key: str) -> bool:
        """``dispatched`` for a caller holding the lock: started, taken, queued or cancelled."""
        return key in self._runs or key in self._taken or key in self._queued or key in self._cancelled

    def result(self, key: str) -> ThreadResult:
        """Wait for the run of ``key`` and return it (or raise what it raised, as often as asked).
        A result is handed out once: the dispatcher then forgets the run (KeyError after that)."""
        with self._lock:
            if key in self._cancelled:
                raise RunCancelledError("run cancelled before it started")
            if key in self._queued:  # its test comes before its turn: start it now
                self._start(key, self._queued.pop(key))
            future, _ = self._runs[key]
            self._waiting.add(key)
        try:
            result = future.result()
            with self._lock:
                self._runs.pop(key, None)
                self._taken.add(key)
                spooled = self._spooled.pop(key, None)
            if spooled is not None:
                result = replace(result, output=self._spool.take(spooled))
            return result
        except CancelledError:
            raise RunCancelledError("run cancelled before it started") from None
        except BaseException as exc:  # re-raised: only marked as "in flight"
            if not future.done():  # interrupted while waiting, not the run's own exception
                PinnedRunner._note_interruption(exc)
            raise
        finally:
            with self._lock:
                self._waiting.discard(key)

    def run_inline(self, request: RunRequest) -> ThreadResult:
        """Run now in the calling thread (serial tests, imperative calls), within the limit."""
        return self._limited(request, None)

    def cancel_outstanding(self) -> int:
        """Cancel every queued or in-flight run; returns how many were still outstanding."""
        with self._lock:
            runs = list(self._runs.values())
            outstanding = len(self._queued)
            self._cancelled.update(self._queued)
            self._queued.clear()
            self._order.clear()
            cancel, self._cancel = self._cancel, threading.Event()
        cancel.set()  # every run started so far holds it
        never_ran = 0
        for future, _ in runs:
            if not future.done():
                outstanding += 1
                never_ran += future.cancel()  # True: it never started, so its _run never counts it
        with self._lock:
            self._unfinished -= never_ran
        return outstanding

    def close(self) -> None:
        """Cancel what is outstanding and stop the pool."""
        with self._lock:
            self._closed = True
        self.cancel_outstanding()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._spool.close()

    def _run(self, key: str, request: RunRequest, cancel: threading.Event) -> ThreadResult:
        try:
            return self._run_and_keep(key, request, cancel)
        finally:
            with self._lock:
                self._unfinished -= 1
                self._fill()

    def _run_and_keep(self, key: str, request: RunRequest, cancel: threading.Event) -> ThreadResult:
        if cancel.is_set():
            raise RunCancelledError("run cancelled before it started")
        result = self._limited(request, cancel)
        if result.output_bytes < LARGE_OUTPUT_BYTES or result.output is None:
            return result
        with self._lock:
            if key in self._waiting or self._closed:
                return result  # its test takes it now: writing it out would only cost time
        try:
            path = self._spool.put(result.output)
        except OSError:  # no room on disk: keep it in memory rather than lose a finished run
            return result
        with self._lock:
            self._spooled[key] = path
        return replace(result, output=None)

    def _limited(self, request: RunRequest, cancel: threading.Event | None) -> ThreadResult:
        slot = self.limit.acquire(cancel)
        if slot is None:
            raise RunCancelledError("run cancelled before it started")
        started = time.monotonic()
        completed, overhead_s = False, None
        try:
            result = self._runner.run(
                request.input,
                script=request.script,
                timeout=request.timeout,
                env=request.env,
                cancel=cancel,
                # A hint on the create call is a refusal: the run is not in flight on the platform.
                on_pushback=lambda error: self.limit.pushback(slot, refused=error.retry_after_s is not None),
                on_created=lambda _thread_id: self.limit.accepted(slot),
                on_retry=lambda: self.limit.resume(slot, cancel),
            )
            completed, overhead_s = True, time.monotonic() - started - result.duration_s
            return result
        except PlatformFault as fault:  # the platform ran it (and failed it): still a round trip
            completed = isinstance(fault, (PlatformFailure, VersionDriftError))
            raise
        except ScriptumError as error:
            if is_pushback(error) and not slot.pushed_back:  # e.g. on the watch, not the create call
                self.limit.pushback(slot)
            raise
        finally:
            self.limit.release(slot, completed=completed, overhead_s=overhead_s)
