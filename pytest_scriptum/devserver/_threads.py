"""Asynchronous thread execution and live progress: the engine behind CreateThread and WatchThread.

`ThreadEngine.start` runs a stored PENDING thread on a background thread of this process (the
handler itself runs out of process, see `_runtime`). While it runs, its state lives here, in
memory: status, steps, yields and an event log that WatchThread / WatchStep subscribers read.
Each event carries the next number of the thread's `sequence` (monotonic, continued across a
pause and resume). When the thread settles (terminal or PAUSED) the store is written once and
the live entry goes away; readers then fall back to the store.

Resume replays the handler from the start with the answers given so far (`_worker`): steps of
earlier segments that completed keep their records and produce no new events; yields already
delivered are not delivered again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._errors import not_found
from ._faults import StatsBook
from ._program import Program
from ._runtime import HandlerRuntime, RunOutcome, RunRequest
from ._steps import StepRecord, sort_steps
from ._store import SETTLED_STATUSES, Store, ThreadRow, now_ms

__all__ = ["LiveThread", "ThreadEngine", "ThreadStart"]

_log = logging.getLogger("pytest_scriptum.devserver")
_MAX_EVENTS = 10_000
_MAX_RUN_THREADS = 2048
_POLL_S = 0.25
_STATUS_BY_NAME = {
    "COMPLETED": pb.THREAD_STATUS_COMPLETED,
    "FAILED": pb.THREAD_STATUS_FAILED,
    "PAUSED": pb.THREAD_STATUS_PAUSED,
    "CANCELLED": pb.THREAD_STATUS_CANCELLED,
}
_STEP_STATUS = {
    "COMPLETED": pb.STEP_STATUS_COMPLETED,
    "FAILED": pb.STEP_STATUS_FAILED,
    "PAUSED": pb.STEP_STATUS_PAUSED,
}


@dataclass(frozen=True)
class ThreadStart:
    """What a run needs besides the stored thread."""

    program: Program
    event_json: str  # the input with the contract's defaults filled in
    timeout_s: float
    answers: tuple[Any, ...] = ()
    prior_steps: tuple[StepRecord, ...] = ()
    prior_yields: tuple[str, ...] = ()
    last_sequence: int = 0


@dataclass
class LiveThread:
    """A thread this process is running (or about to run); guarded by `cond`."""

    org: str
    thread: pb.Thread
    start: ThreadStart
    cond: threading.Condition = field(default_factory=threading.Condition)
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    events: list[pb.ThreadEvent] = field(default_factory=list)
    sequence: int = 0
    steps: dict[str, StepRecord] = field(default_factory=dict)
    suppressed: set[str] = field(default_factory=set)
    yields: list[str] = field(default_factory=list)
    output: bytes = b""
    shutdown: bool = False
    holds_slot: bool = True  # its organization's in-flight slot (see ThreadEngine.admit)

    def snapshot(self) -> pb.Thread:
        """A copy of the thread as of now (caller holds no lock)."""
        with self.cond:
            copy = pb.Thread()
            copy.CopyFrom(self.thread)
            return copy

    def emit_locked(
        self,
        kind: int,
        step: StepRecord | None = None,
        yielded: str = "",
    ) -> None:
        """Append an event (lock held) and wake the subscribers."""
        self.sequence += 1
        event = pb.ThreadEvent(type=kind, sequence=self.sequence, at_ms=now_ms(), yielded_value_json=yielded)  # type: ignore[arg-type]
        event.thread.CopyFrom(self.thread)
        if step is not None:
            event.step.CopyFrom(step.summary())
        self.events.append(event)
        if len(self.events) > _MAX_EVENTS:
            # A subscriber that far behind skips ahead; sequence numbers stay exact.
            del self.events[: _MAX_EVENTS // 2]
        self.cond.notify_all()

    def events_after(self, sequence: int) -> list[pb.ThreadEvent]:
        """Events with a sequence above `sequence` (lock held)."""
        if not self.events:
            return []
        first = self.events[0].sequence
        return self.events[max(0, sequence - first + 1) :]

    def follow(self, seen: int, gone: threading.Event) -> Iterator[pb.ThreadEvent]:
        """Every event after sequence `seen`, as they happen, until the caller stops reading or
        `gone` is set (the subscriber left)."""
        while not gone.is_set():
            with self.cond:
                if self.sequence <= seen:
                    self.cond.wait(_POLL_S)
                batch = self.events_after(seen)
            for event in batch:
                seen = event.sequence
                yield event

    def on_frame(self, frame: Mapping[str, Any]) -> None:
        """A frame of the running handler (see `_worker`)."""
        kind = frame.get("kind")
        with self.cond:
            if kind == "step_start":
                self._step_started(frame)
            elif kind == "step":
                self._step_finished(frame)
            elif kind == "log":
                record = self.steps.get(str(frame.get("path", "")))
                if record is not None and record.path not in self.suppressed:
                    record.add_log(str(frame.get("msg", "")))
            elif kind == "yield":
                if int(frame["index"]) >= len(self.start.prior_yields):
                    value = str(frame["value_json"])
                    self.yields.append(value)
                    self.emit_locked(pb.THREAD_EVENT_TYPE_YIELD, yielded=value)
            elif kind == "ask":
                self.thread.pending_ask.CopyFrom(
                    pb.PendingAsk(
                        step_path=str(frame["path"]),
                        label=str(frame["label"]),
                        prompt=str(frame.get("prompt", "")),
                        type=str(frame.get("type", "text")),
                        options=[str(option) for option in frame.get("options", ())],
                    )
                )
            else:
                raise ValueError(f"unknown frame kind {kind!r}")

    def _step_started(self, frame: Mapping[str, Any]) -> None:
        path = str(frame["path"])
        known = self.steps.get(path)
        if known is not None and known.status == pb.STEP_STATUS_COMPLETED:
            self.suppressed.add(path)  # replayed: the earlier segment's record stands
            return
        record = StepRecord(
            path=path,
            name=str(frame["name"]),
            primitive=str(frame.get("primitive", "execute")),
            tool=str(frame.get("tool", "")),
            started_at_ms=known.started_at_ms if known is not None else int(frame["at_ms"]),
            input_json=str(frame.get("input_json", "")),
        )
        self.steps[path] = record
        self.thread.current_step_path = path
        self.thread.current_step_name = record.name
        self.thread.total_steps = len(self.steps)
        if known is None:
            self.emit_locked(pb.THREAD_EVENT_TYPE_STEP_STARTED, record)

    def _step_finished(self, frame: Mapping[str, Any]) -> None:
        path = str(frame["path"])
        record = self.steps.get(path)
        if record is None or path in self.suppressed:
            return
        record.status = _STEP_STATUS.get(str(frame["status"]), pb.STEP_STATUS_FAILED)
        record.error = str(frame.get("error", ""))
        record.output_json = str(frame.get("output_json", ""))
        if record.status != pb.STEP_STATUS_PAUSED:
            record.finished_at_ms = int(frame["at_ms"])
            self.emit_locked(pb.THREAD_EVENT_TYPE_STEP_FINISHED, record)


class ThreadEngine:
    """Runs threads and serves their live state; one per server."""

    def __init__(
        self,
        store: Store,
        runtime: HandlerRuntime,
        stats: StatsBook,
        platform_failure: Callable[[str], str],
        fails_version: Callable[[str, int, bool], bool] | None = None,
    ) -> None:
        self._store = store
        self._runtime = runtime
        self._stats = stats
        self._platform_failure = platform_failure
        self._fails_version = fails_version  # Faults.fail_version: (org, version, draft) -> fail it
        self._live: dict[str, LiveThread] = {}
        self._in_flight: dict[str, int] = {}  # per organization: accepted or resumed, not yet settled
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        # Reused threads (starting one per run costs more than the run's bookkeeping). Runs waiting
        # for a worker slot hold one too, so the pool is far larger than the runtime's concurrency:
        # a run never queues here, its deadline counts from CreateThread.
        self._pool = ThreadPoolExecutor(max_workers=_MAX_RUN_THREADS, thread_name_prefix="scriptum-run")

    # ---- running ------------------------------------------------------------------------------

    def admit(self, org: str, limit: int) -> bool:
        """Take an in-flight slot of `org` for a new thread; False (nothing taken) when `limit`
        (> 0) of its threads are in flight. The slot goes to `start(..., admitted=True)`, or back
        with `release`."""
        with self._lock:
            count = self._in_flight.get(org, 0)
            if 0 < limit <= count:
                return False
            self._in_flight[org] = count + 1
            self._stats.thread_entered(org)
            return True

    def release(self, org: str) -> None:
        """Give back an in-flight slot of `org` (its thread settled, or never started)."""
        with self._lock:
            self._in_flight[org] -= 1
            self._stats.thread_left(org)

    def _release_slot(self, live: LiveThread) -> None:
        with live.cond:
            held, live.holds_slot = live.holds_slot, False
        if held:
            self.release(live.org)

    def start(self, org: str, thread: pb.Thread, start: ThreadStart, *, admitted: bool = False) -> None:
        """Run a stored PENDING thread in the background. `admitted`: the caller took its in-flight
        slot with `admit` (a resumed thread takes one here, whatever the limit)."""
        if not admitted:
            self.admit(org, 0)
        live = LiveThread(org=org, thread=thread, start=start, sequence=start.last_sequence)
        for step in start.prior_steps:
            live.steps[step.path] = step
        live.yields.extend(start.prior_yields)
        with live.cond:
            live.emit_locked(pb.THREAD_EVENT_TYPE_STATUS)
        with self._lock:
            self._live[thread.thread_id] = live
        self._stats.run_started(org)
        self._pool.submit(self._execute, live)

    def _execute(self, live: LiveThread) -> None:
        try:
            self._run(live)
        except Exception:  # never leave a thread RUNNING forever because of a bug here
            _log.exception("thread %s: unexpected error", live.thread.thread_id)
            self._settle(live, "FAILED", "PLATFORM_RUNTIME_CRASH", "internal error of the dev server")
        finally:
            live.done.set()
            with self._lock:
                self._live.pop(live.thread.thread_id, None)
            self._release_slot(live)

    def _run(self, live: LiveThread) -> None:
        injected = self._platform_failure(live.org)
        if injected:
            self._settle(
                live, "FAILED", injected, f"injected platform failure ({injected}): not the script's fault"
            )
            return
        thread = live.thread
        if self._fails_version is not None and self._fails_version(live.org, thread.version, thread.draft):
            self._settle(
                live, "FAILED", "SCRIPT_ERROR", f"injected script failure of v{thread.version} (fail_version)"
            )
            return
        if live.cancel.is_set() or self.stopping.is_set():
            self._settle_cancelled(live, "cancelled before it started")
            return
        env: dict[str, str] | None = None
        if live.thread.load_env:
            env = self._store.effective_env(live.org, live.thread.script_name)
        with live.cond:
            live.thread.status = pb.THREAD_STATUS_RUNNING
            live.thread.started_at_ms = live.thread.started_at_ms or now_ms()
            live.thread.env_keys[:] = sorted(env or ())
            live.emit_locked(pb.THREAD_EVENT_TYPE_STATUS)
        request = RunRequest(
            org=live.org,
            source=live.start.program.handler,
            event_json=live.start.event_json,
            env=env,
            timeout_s=live.start.timeout_s,
            answers=live.start.answers,
        )
        self._stats.enter_run(live.org)
        outcome: RunOutcome | None = None
        try:
            outcome = self._runtime.run(request, live.on_frame, live.cancel)
        finally:
            self._stats.exit_run(live.org, cancelled=outcome is not None and outcome.status == "CANCELLED")
        if outcome.status == "CANCELLED":
            self._settle_cancelled(live, outcome.error)
            return
        output = outcome.output_json.encode("utf-8") if outcome.status == "COMPLETED" else b""
        self._settle(live, outcome.status, outcome.error_code, outcome.error, output)

    def _settle_cancelled(self, live: LiveThread, error: str) -> None:
        if live.shutdown or self.stopping.is_set():
            self._settle(
                live, "FAILED", "PLATFORM_RESTART", "the server stopped while the thread was unfinished"
            )
        else:
            self._settle(live, "CANCELLED", "CANCELLED_BY_CALLER", error or "the thread was cancelled")

    def _settle(self, live: LiveThread, status: str, code: str, error: str, output: bytes = b"") -> None:
        """Close open steps, store the settled thread, then publish its last event."""
        final = _STATUS_BY_NAME[status]
        with live.cond:
            for record in live.steps.values():
                if record.status == pb.STEP_STATUS_RUNNING:
                    record.status = (
                        pb.STEP_STATUS_CANCELLED if status == "CANCELLED" else pb.STEP_STATUS_FAILED
                    )
                    record.finished_at_ms = now_ms()
                    record.error = f"did not finish: {error.splitlines()[0] if error else status}"
            # The settled state is built on a copy and published below in one step with its
            # event: a subscriber must never see a settled status before (or without) the
            # event that carries it, nor a sequence number the store does not have.
            thread = live.snapshot()
            thread.status = final
            thread.error = error
            thread.error_code = code
            if final != pb.THREAD_STATUS_PAUSED:
                thread.ClearField("pending_ask")
                thread.finished_at_ms = now_ms()
            thread.total_steps = len(live.steps)
            steps = sort_steps(list(live.steps.values()))
            yields = list(live.yields)
            sequence = live.sequence + 1
        answers = list(live.start.answers)
        self._store.settle_thread(
            thread,
            output=output,
            steps=steps,
            yields=yields,
            answers=answers,
            last_sequence=sequence,
        )
        # Settled, so no longer in flight: the slot is free before anyone can see the settled
        # state (a client that starts its next thread on that event must find the slot free).
        self._release_slot(live)
        with live.cond:
            live.thread.CopyFrom(thread)
            live.output = output
            live.emit_locked(pb.THREAD_EVENT_TYPE_STATUS)

    # ---- reading ------------------------------------------------------------------------------

    def live(self, thread_id: str, org: str) -> LiveThread | None:
        """The live entry of one of `org`'s threads, or None (settled, or another org's)."""
        with self._lock:
            live = self._live.get(thread_id)
        return live if live is not None and live.org == org else None

    def thread(self, org: str, thread_id: str) -> pb.Thread:
        """The thread as of now (live progress when running); NOT_FOUND for another org's."""
        live = self.live(thread_id, org)
        if live is not None:
            return live.snapshot()
        return self._store.get_thread(org, thread_id).thread

    def result_row(self, org: str, thread_id: str) -> ThreadRow:
        """Everything GetThreadResult reads; live records for a thread still running."""
        live = self.live(thread_id, org)
        if live is None:
            return self._store.get_thread(org, thread_id)
        with live.cond:
            snapshot = pb.Thread()
            snapshot.CopyFrom(live.thread)
            return ThreadRow(
                thread=snapshot,
                input_json=live.start.event_json,
                output=live.output,
                steps=sort_steps([StepRecord.from_dict(vars(step)) for step in live.steps.values()]),
                yields=list(live.yields),
                answers=list(live.start.answers),
                timeout_s=live.start.timeout_s,
                last_sequence=live.sequence,
                draft_bundle=None,
            )

    def cancel(self, org: str, thread_id: str) -> pb.Thread:
        """Cancel a pending, running or paused thread; a final one is returned unchanged."""
        live = self.live(thread_id, org)
        if live is None:
            return self._store.cancel_settled(org, thread_id, "cancelled by the caller (CancelThread)")
        live.cancel.set()
        live.done.wait(timeout=30)
        return self.thread(org, thread_id)

    def watch(self, org: str, thread_id: str, gone: threading.Event) -> Iterator[pb.ThreadEvent]:
        """WatchThread: the current status first, then every event, until terminal or PAUSED.

        NOT_FOUND is raised here, before the stream starts."""
        live = self.live(thread_id, org)
        if live is None:
            row = self._store.get_thread(org, thread_id)
            event = pb.ThreadEvent(
                type=pb.THREAD_EVENT_TYPE_STATUS,
                thread=row.thread,
                sequence=row.last_sequence,
                at_ms=now_ms(),
            )
            return iter((event,))
        return self._follow(live, gone)

    def _follow(self, live: LiveThread, gone: threading.Event) -> Iterator[pb.ThreadEvent]:
        with live.cond:
            first = pb.ThreadEvent(type=pb.THREAD_EVENT_TYPE_STATUS, sequence=live.sequence, at_ms=now_ms())
            first.thread.CopyFrom(live.thread)
            seen = live.sequence
        yield first
        if first.thread.status in SETTLED_STATUSES:
            return
        for event in live.follow(seen, gone):
            yield event
            if event.type == pb.THREAD_EVENT_TYPE_STATUS and event.thread.status in SETTLED_STATUSES:
                return

    def watch_step(
        self, org: str, thread_id: str, step_path: str, gone: threading.Event
    ) -> Iterator[pb.StepEvent]:
        """WatchStep: the step's state, then its events until it finishes or the thread settles.

        NOT_FOUND (no such thread, or a settled thread without that step) is raised here."""
        live = self.live(thread_id, org)
        if live is None:
            row = self._store.get_thread(org, thread_id)
            step = next((s for s in row.steps if s.path == step_path), None)
            if step is None:
                raise not_found(f"thread {thread_id!r} has no step {step_path!r}")
            kind = pb.THREAD_EVENT_TYPE_STEP_FINISHED if step.finished_at_ms else pb.THREAD_EVENT_TYPE_STATUS
            return iter((pb.StepEvent(thread_id=thread_id, step=step.summary(), type=kind, at_ms=now_ms()),))
        with live.cond:
            # A thread that has settled but is not yet unregistered answers like a stored one:
            # following it would wait for events that will never come.
            missing = live.thread.status in SETTLED_STATUSES and step_path not in live.steps
        if missing:
            raise not_found(f"thread {thread_id!r} has no step {step_path!r}")
        return self._follow_step(live, thread_id, step_path, gone)

    def _follow_step(
        self, live: LiveThread, thread_id: str, step_path: str, gone: threading.Event
    ) -> Iterator[pb.StepEvent]:
        with live.cond:
            seen = live.sequence
            record = live.steps.get(step_path)
            current = None if record is None else record.summary()
        if current is not None:
            finished = current.finished_at_ms > 0
            kind = pb.THREAD_EVENT_TYPE_STEP_FINISHED if finished else pb.THREAD_EVENT_TYPE_STEP_STARTED
            yield pb.StepEvent(thread_id=thread_id, step=current, type=kind, at_ms=now_ms())
            if finished:
                return
        for event in live.follow(seen, gone):
            if event.type in (pb.THREAD_EVENT_TYPE_STEP_STARTED, pb.THREAD_EVENT_TYPE_STEP_FINISHED):
                if event.step.path == step_path:
                    yield pb.StepEvent(
                        thread_id=thread_id, step=event.step, type=event.type, at_ms=event.at_ms
                    )
                    if event.type == pb.THREAD_EVENT_TYPE_STEP_FINISHED:
                        return
            elif event.type == pb.THREAD_EVENT_TYPE_STATUS and event.thread.status in SETTLED_STATUSES:
                with live.cond:
                    last = live.steps.get(step_path)
                summary = last.summary() if last is not None else pb.StepSummary(path=step_path)
                yield pb.StepEvent(
                    thread_id=thread_id, step=summary, type=pb.THREAD_EVENT_TYPE_STATUS, at_ms=event.at_ms
                )
                return

    def in_flight(self) -> int:
        with self._lock:
            return len(self._live)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop: every unfinished thread ends FAILED PLATFORM_RESTART (the runtime is closed by
        the caller after this)."""
        self.stopping.set()
        with self._lock:
            runs = list(self._live.values())
        for live in runs:
            live.shutdown = True
            live.cancel.set()
        for live in runs:
            live.done.wait(timeout)
        self._pool.shutdown(wait=False)


def fill_defaults(event_json: str, event: object, contract: pb.ScriptContract) -> str:
    """The input with the contract's input defaults filled in for missing keys (an object input)."""
    if not isinstance(event, dict):
        return event_json
    missing = [f for f in contract.inputs if f.default_value_json and f.name not in event]
    if not missing:
        return event_json
    filled = dict(event)
    for f in missing:
        filled[f.name] = json.loads(f.default_value_json)
    return json.dumps(filled)
