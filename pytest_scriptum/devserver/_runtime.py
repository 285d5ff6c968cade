"""Out-of-process execution of script handlers: ``handler(event, context)`` in warm worker processes.

Each run is executed by a long-lived child process (``_worker.py``). Isolation (issue 10 item 9):

* A worker serves **one organization only**: it is bound to the organization of its first run and
  never runs another organization's handler. Unbound warm workers (``warm_workers``) are kept
  ready and bound on first use.
* A worker is **not reused** after a run whose handler raised, was killed (deadline, cancel,
  shutdown) or changed the worker's process state (``os.environ``, the working directory,
  ``sys.path``, the set of loaded modules, live threads, signal handlers — the worker compares
  them before and after every run and names what changed). It is then killed with its process
  group, and a fresh warm worker is started in the background.
* Every run execs its source into a fresh module, with ``os.environ`` rebuilt from the server's
  base env (PATH, HOME, locale, TMPDIR; nothing of the server's own secrets) plus the run's
  effective env.

Not isolated: the file system (a handler can write files a later run of the same organization
reads), the network, CPU and memory (no limits besides the deadline), and state a run kept in
objects the checks above do not see (e.g. attributes it set on an already-loaded stdlib module).
POSIX only (process groups, poll).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from ._runtime_worker import WorkerFailure, WorkerProcess

__all__ = ["FrameListener", "HandlerRuntime", "RunOutcome", "RunRequest"]

_log = logging.getLogger(__name__)

# What Python and ordinary tools need; nothing of the server's own env (tokens, tenant keys) leaks.
_BASE_ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
_CANCEL_POLL_S = 0.05
_IDLE_TTL_S = 60.0
_SPAWN_ATTEMPTS = 3

Status = Literal["COMPLETED", "FAILED", "PAUSED", "CANCELLED"]
FrameListener = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class RunRequest:
    """One handler run: the organization, the source, the input, the env, the deadline, and the
    answers to the asks a resumed run replays."""

    org: str
    source: str  # the handler.py text
    event_json: str  # JSON text of the event (the thread input)
    env: Mapping[str, str] | None  # effective env when load_env is on, else None
    timeout_s: float  # the script's deadline for this run
    answers: tuple[Any, ...] = ()


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended. `error_code` is "" for COMPLETED/PAUSED, else a SCRIPT_* / PLATFORM_* /
    CANCELLED_BY_CALLER code (shared semantics); `recycled` says why the worker was retired."""

    status: Status
    error_code: str
    output_json: str  # the handler's return value as JSON text (COMPLETED only)
    error: str
    duration_ms: float
    recycled: str = ""


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


class HandlerRuntime:
    """Runs handlers in pools of warm worker processes, one pool per organization.

    ``run`` is blocking and thread-safe. At most ``max_concurrency`` runs execute at once (and at
    most that many worker processes exist); a run that finds no free slot before its deadline
    fails with PLATFORM_CAPACITY. ``on_worker_started(org)`` is called whenever a worker is bound
    to an organization (a recycled worker's replacement counts again).
    """

    def __init__(
        self,
        *,
        max_concurrency: int = 64,
        warm_workers: int = 2,
        on_worker_started: Callable[[str], None] | None = None,
    ) -> None:
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
        self._on_worker_started = on_worker_started or (lambda org: None)
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._lock = threading.Lock()
        self._idle: dict[str | None, list[WorkerProcess]] = {}  # None: warm, not yet bound
        self._workers: set[WorkerProcess] = set()
        self._owner: dict[WorkerProcess, str] = {}
        self._warming = 0
        self._closed = False
        self._run_ids = itertools.count(1)
        self._env = _base_environment()
        self._cwd = tempfile.gettempdir()
        try:
            for _ in range(warm_workers):
                worker = self._spawn()
                with self._lock:
                    self._idle.setdefault(None, []).append(worker)
        except BaseException:
            self.close()  # no half-started pool left behind
            raise

    def __enter__(self) -> HandlerRuntime:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def worker_pids(self, org: str | None = None) -> tuple[int, ...]:
        """Process ids of the live worker processes (idle and busy), of one organization if given."""
        with self._lock:
            return tuple(sorted(w.pid for w in self._workers if org is None or self._owner.get(w) == org))

    def close(self) -> None:
        """Kill every worker process (runs in flight end FAILED PLATFORM_RESTART); idempotent."""
        with self._lock:
            self._closed = True
            idle = [worker for workers in self._idle.values() for worker in workers]
            self._idle.clear()
            busy = [worker for worker in self._workers if worker not in idle]
            self._workers.clear()
        for worker in idle:
            worker.dispose()
        # Busy workers' pipes belong to their runs: kill only, each run then sees EOF and cleans up.
        for worker in busy:
            worker.terminate()

    def run(
        self, request: RunRequest, on_frame: FrameListener, cancel: threading.Event | None = None
    ) -> RunOutcome:
        """Execute one run to its end. Frames (steps, logs, yields, asks) go to ``on_frame`` as
        they arrive, from the calling thread."""
        _check_request(request)
        start = time.monotonic()
        deadline = start + float(request.timeout_s)
        if self._closed:
            return RunOutcome("FAILED", "PLATFORM_RESTART", "", "the server is stopping", 0.0)
        waited = self._wait_for_slot(deadline, cancel)
        if waited is not None:
            status, code, error = waited
            return RunOutcome(status, code, "", error, (time.monotonic() - start) * 1000)
        try:
            return self._run_in_worker(request, on_frame, start, deadline, cancel)
        finally:
            self._slots.release()

    def _wait_for_slot(
        self, deadline: float, cancel: threading.Event | None
    ) -> tuple[Status, str, str] | None:
        while True:
            if cancel is not None and cancel.is_set():
                return "CANCELLED", "CANCELLED_BY_CALLER", "cancelled before the handler started"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return (
                    "FAILED",
                    "PLATFORM_CAPACITY",
                    (f"no worker became free before the deadline (all {self._max_concurrency} were busy)"),
                )
            wait = remaining if cancel is None else min(remaining, _CANCEL_POLL_S)
            if self._slots.acquire(timeout=wait):
                return None

    def _run_in_worker(
        self,
        request: RunRequest,
        on_frame: FrameListener,
        start: float,
        deadline: float,
        cancel: threading.Event | None,
    ) -> RunOutcome:
        def outcome(
            status: Status, code: str, output_json: str, error: str, recycled: str = ""
        ) -> RunOutcome:
            return RunOutcome(status, code, output_json, error, (time.monotonic() - start) * 1000, recycled)

        run_id = next(self._run_ids)
        worker: WorkerProcess | None = None
        problem = ""
        for _ in range(_SPAWN_ATTEMPTS):
            try:
                candidate = self._checkout(request.org)
            except RuntimeError:  # closed meanwhile
                return outcome("FAILED", "PLATFORM_RESTART", "", "the server stopped before the run started")
            except OSError as exc:  # fork/exec failed, e.g. out of processes or file descriptors
                return outcome(
                    "FAILED", "PLATFORM_RUNTIME_CRASH", "", f"could not start a worker process: {exc}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._checkin(candidate, recycle="")
                return outcome(
                    "FAILED",
                    "PLATFORM_DEADLINE",
                    "",
                    "the server could not start the handler before the thread's deadline",
                )
            frame = {
                "run": run_id,
                "source": request.source,
                "event_json": request.event_json,
                "env": dict(request.env) if request.env is not None else None,
                "timeout_s": remaining,
                "answers": list(request.answers),
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
                return outcome("FAILED", "PLATFORM_RESTART", "", "the server stopped before the run started")
            return outcome(
                "FAILED", "PLATFORM_RUNTIME_CRASH", "", f"could not start a worker process: {problem}"
            )

        def killed(status: Status, code: str, error: str) -> RunOutcome:
            assert worker is not None
            self._discard(worker)
            return outcome(status, code, "", error, recycled="killed")

        while True:
            if cancel is not None and cancel.is_set():
                return killed("CANCELLED", "CANCELLED_BY_CALLER", "the thread was cancelled")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return killed(
                    "FAILED",
                    "SCRIPT_DEADLINE",
                    f"handler exceeded the thread's {float(request.timeout_s):g}s deadline",
                )
            try:
                message = worker.receive(remaining if cancel is None else min(remaining, _CANCEL_POLL_S))
                if message is None or message.get("run") != run_id:
                    continue  # no frame yet, or a leftover of an earlier run
                if message.get("kind") != "result":
                    on_frame(message)
                    continue
                status: Status = message["status"]
                if status not in ("COMPLETED", "FAILED", "PAUSED"):
                    raise ValueError(f"unknown result status {status!r}")
                recycle = str(message.get("recycle") or "")
                self._checkin(worker, recycle=recycle)
                return outcome(
                    status, str(message["code"]), str(message["output_json"]), str(message["error"]), recycle
                )
            except WorkerFailure as exc:
                if self._closed:
                    return killed("FAILED", "PLATFORM_RESTART", "the server stopped while the handler ran")
                return killed(
                    "FAILED", "PLATFORM_RUNTIME_CRASH", f"the handler's worker process died: it {exc}"
                )
            except (KeyError, TypeError, ValueError) as exc:
                return killed(
                    "FAILED",
                    "PLATFORM_RUNTIME_CRASH",
                    f"the worker process sent a malformed message: {exc!r}",
                )

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

    def _checkout(self, org: str) -> WorkerProcess:
        """An idle worker of `org`, else a warm unbound one (now bound), else a new one."""
        while True:
            evict: WorkerProcess | None = None
            with self._lock:
                if self._closed:
                    raise RuntimeError("HandlerRuntime is closed")
                own = self._idle.get(org)
                worker = own.pop() if own else None
                fresh = worker is None
                if worker is None:
                    warm = self._idle.get(None)
                    worker = warm.pop() if warm else None
                if worker is None and len(self._workers) >= self._max_concurrency:
                    # Every process slot is taken: make room by retiring another org's idle worker.
                    evict = self._oldest_idle_locked()
            if evict is not None:
                self._discard(evict)
            if worker is None:
                worker = self._spawn()
            if not worker.alive():
                self._discard(worker)
                continue
            if fresh:
                with self._lock:
                    self._owner[worker] = org
                self._on_worker_started(org)
                self._replenish()
            return worker

    def _oldest_idle_locked(self) -> WorkerProcess | None:
        oldest: tuple[float, str | None, WorkerProcess] | None = None
        for owner, workers in self._idle.items():
            if workers and (oldest is None or workers[0].idle_since < oldest[0]):
                oldest = (workers[0].idle_since, owner, workers[0])
        if oldest is None:
            return None
        self._idle[oldest[1]].pop(0)
        return oldest[2]

    def _checkin(self, worker: WorkerProcess, *, recycle: str) -> None:
        now = time.monotonic()
        expired: list[WorkerProcess] = []
        with self._lock:
            keep = not self._closed and not recycle
            org = self._owner.get(worker)
            if keep:
                worker.idle_since = now
                idle = self._idle.setdefault(org, [])
                idle.append(worker)
                # After a burst, let the extra workers go once they have idled for a while.
                while len(idle) > max(1, self._warm_workers) and now - idle[0].idle_since > _IDLE_TTL_S:
                    expired.append(idle.pop(0))
            else:
                self._workers.discard(worker)
                self._owner.pop(worker, None)
            self._workers.difference_update(expired)
            for old in expired:
                self._owner.pop(old, None)
        if not keep:
            _log.debug("retiring worker %d: %s", worker.pid, recycle or "runtime closed")
            worker.dispose()
            self._replenish()
        for old in expired:
            old.dispose()

    def _replenish(self) -> None:
        """Start a warm unbound worker in the background when fewer than `warm_workers` wait."""
        with self._lock:
            waiting = len(self._idle.get(None, ())) + self._warming
            if self._closed or waiting >= self._warm_workers or len(self._workers) >= self._max_concurrency:
                return
            self._warming += 1
        threading.Thread(target=self._warm_one, name="scriptum-warm-worker", daemon=True).start()

    def _warm_one(self) -> None:
        try:
            worker = self._spawn()
        except (OSError, RuntimeError):
            return
        finally:
            with self._lock:
                self._warming -= 1
        with self._lock:
            if not self._closed:
                self._idle.setdefault(None, []).append(worker)
                return
        worker.dispose()

    def _discard(self, worker: WorkerProcess) -> None:
        with self._lock:
            self._workers.discard(worker)
            self._owner.pop(worker, None)
        worker.dispose()
