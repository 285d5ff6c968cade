"""Child-process entry of the handler runtime: runs one handler(event, context) per request, forever.

Started by ``_runtime_worker.WorkerProcess`` as ``python -I _worker.py`` (by path, so it imports
nothing of pytest_scriptum and its import footprint stays at a few stdlib modules). It speaks
length-prefixed JSON frames (4-byte big-endian length, then UTF-8 JSON) with the server:

    server -> worker   {"run": N, "source": str, "event_json": str, "env": {..} | null, "timeout_s": float}
    worker -> server   {"run": N, "kind": "step_start", "index": i, "name": str, "offset_ms": float}
                       {"run": N, "kind": "step", "index": i, "name", "status", "offset_ms",
                        "duration_ms", "error"}
                       {"run": N, "kind": "log", "msg": str}
                       {"run": N, "kind": "result", "status": "SUCCEEDED" | "FAILED",
                        "output_json": str, "error": str, "recycle": bool}

Step frames stream while the handler runs, so a run killed at its deadline still reports how far it
got. The worker exits on EOF of its input (the server closed the pipe or died) and when its parent
process goes away while a handler is still running.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

HANDLER_FILE = "handler.py"
HANDLER_MODULE = "handler"
MAX_OUTPUT_BYTES = 16 * 1024 * 1024
_MAX_STEP_NAME = 200
_MAX_LOG_CHARS = 4000
_CODE_CACHE_SIZE = 32
_PARENT_POLL_S = 0.5


class _Channel:
    """The framed pipe pair to the server; writes are locked because handler threads may log."""

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self._in = os.fdopen(in_fd, "rb", buffering=1 << 16)
        self._out_fd = out_fd
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any] | None:
        header = self._in.read(4)
        if len(header) < 4:
            return None
        size = int.from_bytes(header, "big")
        body = self._in.read(size)
        if len(body) < size:
            return None
        frame: dict[str, Any] = json.loads(body)
        return frame

    def write(self, frame: dict[str, Any]) -> None:
        body = json.dumps(frame).encode()
        data = memoryview(len(body).to_bytes(4, "big") + body)
        with self._lock:
            while data:
                written = os.write(self._out_fd, data)
                data = data[written:]


class _Context:
    """The ``context`` argument of handler(event, context)."""

    def __init__(self, channel: _Channel, run_id: int, env: Mapping[str, str], timeout_s: float) -> None:
        self._channel = channel
        self._run_id = run_id
        self._start = time.monotonic()
        self._deadline = self._start + timeout_s
        self._next_index = 0
        self._index_lock = threading.Lock()
        self._open = True
        self.env: Mapping[str, str] = types.MappingProxyType(dict(env))

    @property
    def deadline_s(self) -> float:
        """Seconds left before the platform kills this run."""
        return max(0.0, self._deadline - time.monotonic())

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self._start) * 1000.0

    def close(self) -> None:
        # Threads a handler left behind must not write frames into the next run's stream.
        self._open = False

    def _send(self, frame: dict[str, Any]) -> None:
        if self._open:
            frame["run"] = self._run_id
            self._channel.write(frame)

    def log(self, msg: object) -> None:
        """Send one log line to the server (truncated to a few thousand characters)."""
        self._send({"kind": "log", "msg": str(msg)[:_MAX_LOG_CHARS]})

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Record a named step: start offset, duration, ok or error; exceptions propagate."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"context.step(name): name must be a non-empty string, got {name!r}")
        if len(name) > _MAX_STEP_NAME:
            raise ValueError(
                f"context.step(name): name is {len(name)} characters, the limit is {_MAX_STEP_NAME}"
            )
        with self._index_lock:
            index = self._next_index
            self._next_index += 1
        offset_ms = self.elapsed_ms()
        self._send({"kind": "step_start", "index": index, "name": name, "offset_ms": offset_ms})
        status, error = "ok", ""
        try:
            yield
        except BaseException as exc:
            status, error = "error", _exception_line(exc)
            raise
        finally:
            self._send(
                {
                    "kind": "step",
                    "index": index,
                    "name": name,
                    "status": status,
                    "offset_ms": offset_ms,
                    "duration_ms": self.elapsed_ms() - offset_ms,
                    "error": error,
                }
            )


def _exception_line(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit: handler called sys.exit({exc.code!r})"
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not take the worker down
        text = "<exception text unavailable>"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _handler_traceback(exc: BaseException, limit: int = 6) -> str:
    """The last traceback lines from the handler's first frame on (the worker's frames dropped)."""
    import traceback  # only on failure: keeps the worker's start-up imports small

    frames = traceback.extract_tb(exc.__traceback__)
    first = next((i for i, frame in enumerate(frames) if frame.filename == HANDLER_FILE), None)
    if first is None:
        return ""
    return "".join(traceback.format_list(frames[first:][-limit:])).rstrip()


def _failure(exc: BaseException) -> str:
    tb = _handler_traceback(exc)
    line = _exception_line(exc)
    return f"{line}\n{tb}" if tb else line


def _json_problem(value: object, path: str, depth: int = 0) -> str | None:
    """Why ``value`` has no exact JSON form (naming where), or None when it has one."""
    if depth > 500:
        return f"{path} is nested more than 500 levels deep"
    if value is None or isinstance(value, (bool, int, str)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value!r}, which JSON cannot represent"
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{path}[{i}]", depth + 1)
            if problem is not None:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} has a {type(key).__name__} key {key!r}; JSON object keys must be strings"
            problem = _json_problem(item, f"{path}[{key!r}]", depth + 1)
            if problem is not None:
                return problem
        return None
    return f"{path} is a {type(value).__module__}.{type(value).__qualname__}"


class _Runner:
    """Executes requests one at a time, restoring the process state the previous run changed."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._base_env = dict(os.environ)
        self._base_path = list(sys.path)
        self._base_cwd = os.getcwd()
        self._base_threads = threading.active_count()
        self._code: dict[str, types.CodeType] = {}

    def _compile(self, source: str) -> types.CodeType:
        # Code objects are immutable: caching them is safe, each run still execs into a fresh module.
        code = self._code.get(source)
        if code is None:
            code = compile(source, HANDLER_FILE, "exec", dont_inherit=True)
            if len(self._code) >= _CODE_CACHE_SIZE:
                self._code.pop(next(iter(self._code)))
            self._code[source] = code
        return code

    def _reset_process_state(self, env: Mapping[str, str] | None) -> None:
        os.environ.clear()
        os.environ.update(self._base_env)
        if env is not None:
            os.environ.update(env)
        sys.path[:] = self._base_path
        if os.getcwd() != self._base_cwd:
            os.chdir(self._base_cwd)
        sys.modules.pop(HANDLER_MODULE, None)

    def run(self, request: dict[str, Any]) -> None:
        run_id = int(request["run"])
        env: dict[str, str] | None = request["env"]
        self._reset_process_state(env)
        context = _Context(self._channel, run_id, env or {}, float(request["timeout_s"]))
        status, output_json, error = "FAILED", "", ""
        try:
            status, output_json, error = self._execute(request, context)
        finally:
            context.close()
            self._reset_process_state(None)
        # A handler that left threads running could touch the next run's env: retire this worker.
        recycle = threading.active_count() > self._base_threads
        self._channel.write(
            {
                "run": run_id,
                "kind": "result",
                "status": status,
                "output_json": output_json,
                "error": error,
                "recycle": recycle,
            }
        )

    def _execute(self, request: dict[str, Any], context: _Context) -> tuple[str, str, str]:
        try:
            event = json.loads(request["event_json"])
        except ValueError as exc:
            return "FAILED", "", f"event is not valid JSON: {exc}"
        source: str = request["source"]
        module = types.ModuleType(HANDLER_MODULE)
        module.__file__ = HANDLER_FILE
        sys.modules[HANDLER_MODULE] = module  # dataclasses, pickle and typing look the module up
        _register_source(source)
        try:
            exec(self._compile(source), module.__dict__)
            handler = getattr(module, "handler", None)
            if not callable(handler):
                return "FAILED", "", f"{HANDLER_FILE} defines no callable handler(event, context)"
            result = handler(event, context)
        except BaseException as exc:
            # BaseException: sys.exit() and KeyboardInterrupt in a handler fail the run, not the worker.
            return "FAILED", "", _failure(exc)
        problem = _json_problem(result, "return value")
        if problem is not None:
            return "FAILED", "", f"handler returned a value that is not JSON-serialisable: {problem}"
        try:
            output_json = json.dumps(result, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            return "FAILED", "", f"handler returned a value that is not JSON-serialisable: {exc}"
        if len(output_json) > MAX_OUTPUT_BYTES:
            too_big = f"handler output is {len(output_json)} bytes of JSON; the limit is {MAX_OUTPUT_BYTES}"
            return "FAILED", "", too_big
        return "SUCCEEDED", output_json, ""


def _register_source(source: str) -> None:
    # So tracebacks show the handler's source lines, not just file and line numbers.
    import linecache

    linecache.cache[HANDLER_FILE] = (len(source), None, source.splitlines(True), HANDLER_FILE)


def _exit_when_orphaned(parent_pid: int) -> None:
    # A handler may run for minutes: EOF on stdin is only seen between runs, so also watch the parent.
    while True:
        time.sleep(_PARENT_POLL_S)
        if os.getppid() != parent_pid:
            os._exit(70)


def _isolate_stdio() -> _Channel:
    """Move the protocol pipes off fds 0/1 so handler prints and reads cannot touch them."""
    in_fd = os.dup(0)
    out_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    return _Channel(in_fd, out_fd)


def main() -> int:
    """Serve requests until the server closes the pipe."""
    channel = _isolate_stdio()
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    runner = _Runner(channel)
    while True:
        request = channel.read()
        if request is None:
            return 0
        runner.run(request)


if __name__ == "__main__":
    sys.exit(main())
