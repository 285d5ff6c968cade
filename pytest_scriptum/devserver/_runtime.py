"""Out-of-process execution of script handlers: ``handler(event, context)`` in warm worker processes.

Each run is executed by a long-lived child process (``_worker.py``) taken from a pool that grows on
demand up to ``max_concurrency``; a worker killed at a deadline, on cancel or by a crash is dropped
and replaced lazily. The worker rebuilds ``os.environ`` and execs the source into a fresh module for
every run, so a handler only ever sees its own run's env. POSIX only (process groups, poll).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from ._runtime_worker import WorkerFailure, WorkerProcess

__all__ = ["HandlerRuntime", "RunOutcome", "RunRequest", "StepRecord"]

_log = logging.getLogger(__name__)

# What Python and ordinary tools need; nothing of the server's own env (tokens, tenant keys) leaks.
_BASE_ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
_CANCEL_POLL_S = 0.05
_IDLE_TTL_S = 60.0
_SPAWN_ATTEMPTS = 3

Status = Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"]


@dataclass(frozen=True)
class RunRequest:
    """One handler run: the version's source, its input and effective env, and its deadline."""

    source: str  # the version's handler.py text
    event_json: str  # JSON text of the event (the thread input)
    env: Mapping[str, str] | None  # effective env when env resolution is on, else None
    timeout_s: float  # the platform deadline for this run


@dataclass(frozen=True)
class StepRecord:
    """One ``context.step(name)`` of a run."""

    name: str
    status: str  # "ok" | "error"
    offset_ms: float  # from run start to step start
    duration_ms: float
    error: str  # exception text when the step raised, else ""


@dataclass(frozen=True)
class RunOutcome:
    """The result of a run; steps are reported for every status, as far as the handler got."""

    status: Status
    output_json: str  # handler return value as JSON text (SUCCEEDED only, else "")
    error: str  # error text for FAILED/TIMED_OUT/CANCELLED, else ""
    steps: tuple[StepRecord, ...]
    env_keys: tuple[str, ...]  # sorted keys of the env the handler saw (empty when env is None)
    duration_ms: float


def _base_environment() -> dict[str, str]:
    return {key: os.environ[key] for key in _BASE_ENV_KEYS if key in os.environ}


def _check_request(request: RunRequest) -> None:
    if not isinstance(request.source, str):
        raise TypeError(f"RunRequest.source must be str, got {type(request.source).__name__}")
    if not isinstance(request.event_json, str):
        raise TypeError(f"RunRequest.event_json must be str, got {type(request.event_json).__name__}")
    timeout = request.timeout_s
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout):
        raise ValueError(f"RunRequest.timeout_s must be a finite number of seconds, got {timeout!r}")
    if timeout <= 0:
        raise ValueError(f"RunRequest.timeout_s must be > 0, got {timeout!r}")
    if request.env is not None:
        for key, value in request.env.items():
            if not isinstance(key, str) or not key or "=" in key or "\0" in key:
                raise ValueError(f"RunRequest.env: key {key!r} is not a valid environment variable name")
            if not isinstance(value, str) or "\0" in value:
                # The value itself is never echoed: it may be a secret.
                raise ValueError(f"RunRequest.env[{key!r}]: value must be a str without NUL characters")


class _Steps:
    """Step records as they stream in; steps still open when a run is killed are closed as errors."""

    def __init__(self) -> None:
        self._open: dict[int, tuple[str, float]] = {}
        self._done: list[StepRecord] = []

    def started(self, frame: Mapping[str, Any]) -> None:
        self._open[int(frame["index"])] = (str(frame["name"]), float(frame["offset_ms"]))

    def finished(self, frame: Mapping[str, Any]) -> None:
        self._open.pop(int(frame["index"]), None)
        self._done.append(
            StepRecord(
                name=str(frame["name"]),
                status="error" if frame["status"] == "error" else "ok",
                offset_ms=float(frame["offset_ms"]),
                duration_ms=float(frame["duration_ms"]),
                error=str(frame["error"]),
            )
        )

    def records(self, *, interrupted_at_ms: float | None = None, reason: str = "") -> tuple[StepRecord, ...]:
        records = list(self._done)
        if interrupted_at_ms is not None:
            for name, offset in self._open.values():
                duration = max(0.0, interrupted_at_ms - offset)
                records.append(StepRecord(name, "error", offset, duration, f"did not finish: {reason}"))
        return tuple(sorted(records, key=lambda record: record.offset_ms))


class HandlerRuntime:
    """Runs handlers in a pool of warm worker processes; ``run`` is blocking and thread-safe."""

    def __init__(self, *, max_concurrency: int = 64, warm_workers: int = 2) -> None:
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        if isinstance(warm_workers, bool) or not isinstance(warm_workers, int) or warm_workers < 0:
            raise ValueError(f"warm_workers must be an int >= 0, got {warm_workers!r}")
        if warm_workers > max_concurrency:
            raise ValueError(
                f"warm_workers ({warm_workers}) must not exceed max_concurrency ({max_concurrency})"
            )
        self._max_concurrency = max_concurrency
        self._warm_workers = warm_workers
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._lock = threading.Lock()
        self._idle: list[WorkerProcess] = []
        self._workers: set[WorkerProcess] = set()
        self._closed = False
        self._run_ids = itertools.count(1)
        self._env = _base_environment()
        self._cwd = tempfile.gettempdir()
        try:
            for _ in range(warm_workers):
                self._idle.append(self._spawn())
        except BaseException:
            self.close()  # no half-started pool left behind
            raise

    def __enter__(self) -> HandlerRuntime:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def worker_pids(self) -> tuple[int, ...]:
        """Process ids of the live worker processes (idle and busy)."""
        with self._lock:
            return tuple(sorted(worker.pid for worker in self._workers))

    def close(self) -> None:
        """Kill every worker process (runs in flight end CANCELLED); idempotent."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = [worker for worker in self._workers if worker not in idle]
            self._workers.clear()
        for worker in idle:
            worker.dispose()
        # Busy workers' pipes belong to their runs: kill only, each run then sees EOF and cleans up.
        for worker in busy:
            worker.terminate()

    def run(self, request: RunRequest, cancel: threading.Event | None = None) -> RunOutcome:
        """Execute one run to its end: SUCCEEDED, FAILED, TIMED_OUT (killed) or CANCELLED (killed)."""
        _check_request(request)
        start = time.monotonic()
        deadline = start + float(request.timeout_s)
        env_keys = tuple(sorted(request.env)) if request.env is not None else ()
        if self._closed:
            raise RuntimeError("HandlerRuntime is closed")
        waited = self._wait_for_slot(deadline, cancel)
        if waited is not None:
            status, error = waited
            return RunOutcome(status, "", error, (), env_keys, (time.monotonic() - start) * 1000)
        try:
            return self._run_in_worker(request, start, deadline, cancel, env_keys)
        finally:
            self._slots.release()

    def _wait_for_slot(self, deadline: float, cancel: threading.Event | None) -> tuple[Status, str] | None:
        while True:
            if cancel is not None and cancel.is_set():
                return "CANCELLED", "cancelled before the handler started"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "TIMED_OUT", (
                    f"no worker became free before the deadline (all {self._max_concurrency} were busy)"
                )
            wait = remaining if cancel is None else min(remaining, _CANCEL_POLL_S)
            if self._slots.acquire(timeout=wait):
                return None

    def _run_in_worker(
        self,
        request: RunRequest,
        start: float,
        deadline: float,
        cancel: threading.Event | None,
        env_keys: tuple[str, ...],
    ) -> RunOutcome:
        def outcome(
            status: Status, output_json: str, error: str, steps: tuple[StepRecord, ...]
        ) -> RunOutcome:
            return RunOutcome(status, output_json, error, steps, env_keys, (time.monotonic() - start) * 1000)

        run_id = next(self._run_ids)
        worker: WorkerProcess | None = None
        problem = ""
        for _ in range(_SPAWN_ATTEMPTS):
            try:
                candidate = self._checkout()
            except RuntimeError:  # closed meanwhile
                return outcome("CANCELLED", "", "the handler runtime was closed before the run started", ())
            except OSError as exc:  # fork/exec failed, e.g. out of processes or file descriptors
                return outcome("FAILED", "", f"could not start a handler worker process: {exc}", ())
            frame = {
                "run": run_id,
                "source": request.source,
                "event_json": request.event_json,
                "env": dict(request.env) if request.env is not None else None,
                "timeout_s": max(0.0, deadline - time.monotonic()),
            }
            try:
                candidate.send(frame)
            except WorkerFailure as exc:  # it died while idle: it never saw this run, so try another
                problem = str(exc)
                self._discard(candidate)
                continue
            worker = candidate
            break
        if worker is None:
            if self._closed:
                return outcome("CANCELLED", "", "the handler runtime was closed before the run started", ())
            return outcome("FAILED", "", f"could not start a handler worker process: {problem}", ())

        sent = time.monotonic()
        steps = _Steps()

        def killed(status: Status, error: str) -> RunOutcome:
            assert worker is not None
            self._discard(worker)
            interrupted_at = (time.monotonic() - sent) * 1000
            return outcome(status, "", error, steps.records(interrupted_at_ms=interrupted_at, reason=error))

        while True:
            if cancel is not None and cancel.is_set():
                return killed("CANCELLED", "the run was cancelled")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return killed("TIMED_OUT", f"handler exceeded its {float(request.timeout_s)} s deadline")
            try:
                message = worker.receive(remaining if cancel is None else min(remaining, _CANCEL_POLL_S))
                if message is None or message.get("run") != run_id:
                    continue  # no frame yet, or a leftover of an earlier run
                kind = message.get("kind")
                if kind == "step_start":
                    steps.started(message)
                elif kind == "step":
                    steps.finished(message)
                elif kind == "log":
                    _log.debug("handler log: %s", message.get("msg", ""))
                elif kind == "result":
                    status: Status = "SUCCEEDED" if message["status"] == "SUCCEEDED" else "FAILED"
                    output_json = str(message["output_json"]) if status == "SUCCEEDED" else ""
                    error = "" if status == "SUCCEEDED" else str(message["error"])
                    self._checkin(worker, recycle=bool(message.get("recycle")))
                    return outcome(status, output_json, error, steps.records())
                else:
                    raise WorkerFailure(f"the worker process sent an unknown message kind {kind!r}")
            except WorkerFailure as exc:
                if self._closed:
                    return killed("CANCELLED", "the handler runtime was closed while the run was in flight")
                return killed("FAILED", f"the handler's process died during the run: it {exc}")
            except (KeyError, TypeError, ValueError) as exc:
                return killed("FAILED", f"the worker process sent a malformed message: {exc!r}")

    def _spawn(self) -> WorkerProcess:
        worker = WorkerProcess(self._env, self._cwd)
        with self._lock:
            closed = self._closed
            if not closed:
                self._workers.add(worker)
        if closed:
            worker.dispose()
            raise RuntimeError("HandlerRuntime is closed")
        return worker

    def _checkout(self) -> WorkerProcess:
        while True:
            with self._lock:
                if self._closed:
                    raise RuntimeError("HandlerRuntime is closed")
                worker = self._idle.pop() if self._idle else None
            if worker is None:
                return self._spawn()
            if worker.alive():
                return worker
            self._discard(worker)

    def _checkin(self, worker: WorkerProcess, *, recycle: bool) -> None:
        now = time.monotonic()
        expired: list[WorkerProcess] = []
        with self._lock:
            keep = not self._closed and not recycle
            if keep:
                worker.idle_since = now
                self._idle.append(worker)
                # After a burst, let the extra workers go once they have idled for a while.
                while len(self._idle) > self._warm_workers and now - self._idle[0].idle_since > _IDLE_TTL_S:
                    expired.append(self._idle.pop(0))
            else:
                self._workers.discard(worker)
            self._workers.difference_update(expired)
        if not keep:
            worker.dispose()
        for old in expired:
            old.dispose()

    def _discard(self, worker: WorkerProcess) -> None:
        with self._lock:
            self._workers.discard(worker)
        worker.dispose()
