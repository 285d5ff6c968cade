"""Pinned thread runs: ThreadResult, the PinnedRunner and the concurrent dispatcher.

Every run is pinned to the candidate version; a platform answer for any other version is a
``VersionDriftError`` (the platform's fault, never a candidate failure). Thread runs are remote
I/O, so the dispatcher starts the runs of all marker-declared smoke tests at once (bounded by
``--scriptum-concurrency``) and each test waits only for its own result.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.client import ScriptumClient, ScriptumError

__all__ = [
    "CONSECUTIVE_ERRORS_LIMIT",
    "CircuitOpenError",
    "Dispatcher",
    "PinnedRunner",
    "PlatformFault",
    "RunCancelledError",
    "RunRequest",
    "Step",
    "ThreadResult",
    "VersionDriftError",
]

# After this many platform errors in a row the runner stops dispatching: hammering a sick
# platform helps nobody, and the gate goes inconclusive on the errors it already has.
CONSECUTIVE_ERRORS_LIMIT = 5


class PlatformFault(Exception):
    """A smoke run failed for a reason that is the platform's fault, not the candidate's."""


class VersionDriftError(PlatformFault):
    """The platform ran (or reported) a version other than the pinned one."""


class CircuitOpenError(PlatformFault):
    """Too many consecutive platform errors: no more runs are dispatched."""


class RunCancelledError(PlatformFault):
    """The run was cancelled before it finished (-x, --maxfail, fail-fast or Ctrl-C)."""


@dataclass(frozen=True)
class Step:
    """One step the handler recorded with ``context.step(name)``."""

    name: str
    status: str
    offset_ms: float
    duration_ms: float
    error: str


@dataclass(frozen=True)
class ThreadResult:
    """The outcome of one pinned thread run as the platform reported it."""

    thread_id: str
    script: str
    version: int
    status: str
    output: Any
    error: str
    steps: tuple[Step, ...]
    env_keys: tuple[str, ...]
    duration_s: float
    request_id: str = ""
    input: Any = None
    finished_at: float | None = None  # platform clock, seconds since the epoch

    @classmethod
    def from_proto(cls, thread: pb.Thread, input: Any = None) -> ThreadResult:
        """Build from the API's Thread message (output JSON decoded, types kept)."""
        output = json.loads(thread.output_json) if thread.output_json else None
        return cls(
            thread_id=thread.thread_id,
            script=thread.script,
            version=thread.version,
            status=pb.ThreadStatus.Name(thread.status),
            output=output,
            error=thread.error,
            steps=tuple(Step(s.name, s.status, s.offset_ms, s.duration_ms, s.error) for s in thread.steps),
            env_keys=tuple(thread.env_keys),
            duration_s=thread.duration_ms / 1000.0,
            request_id=thread.request_id,
            input=input,
            finished_at=thread.finished_at.ToMicroseconds() / 1e6 if thread.HasField("finished_at") else None,
        )


@dataclass(frozen=True)
class RunRequest:
    """What to run: a script's pinned version with an input."""

    input: Any
    script: str | None = None
    timeout: float | None = None
    env: bool | None = None


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
    ) -> None:
        self._client = client
        self._version = version
        self._script = script
        self._timeout = timeout
        self._resolve_env = resolve_env
        self._error_limit = error_limit
        self._consecutive_errors = 0
        self._lock = threading.Lock()

    @property
    def version(self) -> int:
        """The version every run is pinned to."""
        return self._version

    @property
    def default_script(self) -> str | None:
        """The script used when a run names none."""
        return self._script

    @property
    def circuit_open(self) -> bool:
        """Whether consecutive platform errors stopped further runs."""
        with self._lock:
            return self._consecutive_errors >= self._error_limit

    def run(
        self,
        input: Any,
        *,
        script: str | None = None,
        timeout: float | None = None,
        env: bool | None = None,
        cancel: threading.Event | None = None,
    ) -> ThreadResult:
        """Run one thread pinned to the candidate and wait for its result.

        A thread that ends FAILED or TIMED_OUT is returned (the candidate's fault, judged by the
        caller); platform trouble raises PlatformFault or ScriptumError.
        """
        name = script or self._script
        if not name:
            raise ValueError(
                "no script to run: pass script=..., use @pytest.mark.scriptum('NAME') "
                "or set --scriptum-script / scriptum_script"
            )
        if self.circuit_open:
            raise CircuitOpenError(
                f"not dispatched: {self._error_limit} consecutive platform errors; "
                "the platform looks unhealthy"
            )
        resolve_env = self._resolve_env if env is None else env
        try:
            thread = self._client.run_thread(
                name,
                self._version,
                input,
                resolve_env=resolve_env,
                timeout_s=timeout or self._timeout,
                cancel=cancel,
            )
        except ScriptumError as exc:
            if exc.code == "CANCELLED":
                raise RunCancelledError(f"run of {name} v{self._version} cancelled") from None
            with self._lock:
                self._consecutive_errors += 1
            raise
        with self._lock:
            self._consecutive_errors = 0
        result = ThreadResult.from_proto(thread, input)
        if result.version != self._version or result.script != name:
            raise VersionDriftError(
                f"version drift: the run was pinned to {name} v{self._version} but the platform reported "
                f"{result.script} v{result.version} (thread {result.thread_id}); this is a platform fault, "
                "not a candidate failure"
            )
        return result


class Dispatcher:
    """Starts runs early on a bounded pool; each test later takes its own result."""

    def __init__(self, runner: PinnedRunner, concurrency: int) -> None:
        self._runner = runner
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="scriptum-run")
        self._runs: dict[str, tuple[Future[ThreadResult], threading.Event]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, key: str, request: RunRequest) -> None:
        """Start the run for ``key`` unless it was already started (idempotent)."""
        with self._lock:
            if self._closed or key in self._runs:
                return
            cancel = threading.Event()
            future = self._pool.submit(self._run, request, cancel)
            self._runs[key] = (future, cancel)

    def submit_all(self, requests: Iterable[tuple[str, RunRequest]]) -> None:
        """Submit in the given (collection) order."""
        for key, request in requests:
            self.submit(key, request)

    def dispatched(self, key: str) -> bool:
        """Whether a run for ``key`` was started early."""
        with self._lock:
            return key in self._runs

    def result(self, key: str) -> ThreadResult:
        """Wait for the run of ``key`` and return it (or raise what it raised)."""
        with self._lock:
            future, _ = self._runs[key]
        try:
            return future.result()
        except CancelledError:
            raise RunCancelledError("run cancelled before it started") from None

    def run_inline(self, request: RunRequest) -> ThreadResult:
        """Run now in the calling thread (serial tests, imperative calls)."""
        return self._runner.run(
            request.input, script=request.script, timeout=request.timeout, env=request.env
        )

    def cancel_outstanding(self) -> int:
        """Cancel every queued or in-flight run; returns how many were still outstanding."""
        with self._lock:
            runs = list(self._runs.values())
        outstanding = 0
        for future, cancel in runs:
            if not future.done():
                outstanding += 1
                cancel.set()
                future.cancel()
        return outstanding

    def close(self) -> None:
        """Cancel what is outstanding and stop the pool."""
        with self._lock:
            self._closed = True
        self.cancel_outstanding()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, request: RunRequest, cancel: threading.Event) -> ThreadResult:
        if cancel.is_set():
            raise RunCancelledError("run cancelled before it started")
        return self._runner.run(
            request.input, script=request.script, timeout=request.timeout, env=request.env, cancel=cancel
        )
