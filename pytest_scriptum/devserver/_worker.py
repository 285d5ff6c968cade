"""Child-process entry of the handler runtime: runs one handler(event, context) per request, forever.

Started by ``_runtime_worker.WorkerProcess`` as ``python -I _worker.py`` (by path, so it imports
nothing of pytest_scriptum and its import footprint stays at a few stdlib modules). It speaks
length-prefixed JSON frames (4-byte big-endian length, then UTF-8 JSON) with the server:

    server -> worker   {"run": N, "source": str, "event_json": str, "env": {..} | null,
                        "timeout_s": float, "answers": [value, ...]}
    worker -> server   {"run": N, "kind": "step_start", "path", "name", "primitive", "tool",
                        "input_json", "at_ms"}
                       {"run": N, "kind": "step", "path", "status": "COMPLETED"|"FAILED"|"PAUSED",
                        "error", "output_json", "at_ms"}
                       {"run": N, "kind": "log", "path": str, "msg": str}
                       {"run": N, "kind": "yield", "index": i, "value_json": str}
                       {"run": N, "kind": "ask", "path", "label", "prompt", "type", "options"}
                       {"run": N, "kind": "result", "status": "COMPLETED"|"FAILED"|"PAUSED",
                        "code": str, "output_json": str, "error": str, "recycle": str}

The handler's API (the ``context`` argument; DESIGN section 5):

* ``with context.step(name) as step:`` records a step; nested steps get nested paths (top-level
  "1", "2", ...; the children of "1" are "1.0", "1.1", ...). ``step.path`` is its path,
  ``step.output(value)`` records a JSON output for it.
* ``context.env``: the effective env (tenant env + the script's overlay) when the thread was
  created with ``load_env``, else empty. The same keys are in ``os.environ`` during the run.
* ``context.log(msg)``: a log line, recorded with the innermost open step.
* ``context.yield_(value)``: a streamed intermediate value (the language's ``yield``; a trailing
  underscore because ``yield`` is a Python keyword), delivered over WatchThread as it happens.
* ``context.ask(label, prompt="", type="text", options=None)``: pauses the thread (PAUSED, with
  the ask in ``Thread.pending_ask``) until ResumeThread answers it, then returns the answer's
  value (see ``docs/http-gateway.md``, "Human in the loop"). Resuming replays the handler from the
  start with the answers given so far: code before the ask runs again, asks already answered
  return at once.
* ``context.tool(name, **inputs)``: calls a native tool of the catalog (echo, file_read,
  http_request) as a step of its own.
* ``context.deadline_s``: seconds left before the run is killed.

Step frames stream while the handler runs, so a run killed at its deadline still reports how far it
got. After every run the worker compares its process state with the state before the run
(``os.environ``, the working directory, ``sys.path``, the set of loaded modules, live threads,
signal handlers); a run that changed any of them, or whose handler raised, asks the server to
retire this worker (``recycle`` names why). The worker exits on EOF of its input and when its
parent process goes away while a handler is still running.
"""

from __future__ import annotations

import collections  # noqa: F401  (pre-loaded: a handler importing it is no state change)
import datetime  # noqa: F401
import functools  # noqa: F401
import hashlib  # noqa: F401
import itertools  # noqa: F401
import json
import math
import os
import random  # noqa: F401
import re  # noqa: F401
import signal
import string  # noqa: F401
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
ASK_TYPES = ("text", "number", "boolean")
_MAX_STEP_NAME = 200
_MAX_LOG_CHARS = 4000
_CODE_CACHE_SIZE = 32
_PARENT_POLL_S = 0.5
_SIGNALS = tuple(s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP))


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


class _Paused(BaseException):
    """Unwinds the handler at an unanswered ask (BaseException: `except Exception` lets it pass)."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


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


def _to_json(value: object, what: str) -> str:
    problem = _json_problem(value, what)
    if problem is not None:
        raise TypeError(f"{what} is not JSON-serialisable: {problem}")
    return json.dumps(value, allow_nan=False)


class _StepHandle:
    """What ``with context.step(name) as step`` gives: the path, and a way to record an output."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.output_json = ""

    def output(self, value: object) -> None:
        """Record ``value`` (JSON-able) as the step's output."""
        self.output_json = _to_json(value, "step output")


class _Context:
    """The ``context`` argument of handler(event, context)."""

    def __init__(
        self,
        channel: _Channel,
        run_id: int,
        env: Mapping[str, str],
        timeout_s: float,
        answers: list[Any],
    ) -> None:
        self._channel = channel
        self._run_id = run_id
        self._deadline = time.monotonic() + timeout_s
        self._lock = threading.Lock()
        self._children: dict[str, int] = {}
        self._local = threading.local()
        self._answers = answers
        self._asks = 0
        self._yields = 0
        self._open = True
        self.paused = False
        self.env: Mapping[str, str] = types.MappingProxyType(dict(env))

    @property
    def deadline_s(self) -> float:
        """Seconds left before the platform kills this run."""
        return max(0.0, self._deadline - time.monotonic())

    def close(self) -> None:
        # Threads a handler left behind must not write frames into the next run's stream.
        self._open = False

    def _send(self, frame: dict[str, Any]) -> None:
        if self._open:
            frame["run"] = self._run_id
            self._channel.write(frame)

    def _stack(self) -> list[str]:
        stack: list[str] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def _next_path(self) -> str:
        stack = self._stack()
        parent = stack[-1] if stack else ""
        with self._lock:
            index = self._children.get(parent, 1 if not parent else 0)
            self._children[parent] = index + 1
        return f"{parent}.{index}" if parent else str(index)

    def log(self, msg: object) -> None:
        """Send one log line to the server (truncated to a few thousand characters)."""
        stack = self._stack()
        self._send({"kind": "log", "path": stack[-1] if stack else "", "msg": str(msg)[:_MAX_LOG_CHARS]})

    def yield_(self, value: object) -> None:
        """Stream an intermediate value (JSON-able) to WatchThread and the result's yields."""
        value_json = _to_json(value, "yielded value")
        with self._lock:
            index = self._yields
            self._yields += 1
        self._send({"kind": "yield", "index": index, "value_json": value_json})

    @contextmanager
    def _record(
        self, name: str, primitive: str, tool: str = "", input_json: str = ""
    ) -> Iterator[_StepHandle]:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"step name must be a non-empty string, got {name!r}")
        if len(name) > _MAX_STEP_NAME:
            raise ValueError(f"step name is {len(name)} characters, the limit is {_MAX_STEP_NAME}")
        handle = _StepHandle(self._next_path())
        self._send(
            {
                "kind": "step_start",
                "path": handle.path,
                "name": name,
                "primitive": primitive,
                "tool": tool,
                "input_json": input_json,
                "at_ms": _now_ms(),
            }
        )
        stack = self._stack()
        stack.append(handle.path)
        status, error = "COMPLETED", ""
        try:
            yield handle
        except _Paused:
            status = "PAUSED"
            raise
        except BaseException as exc:
            status, error = "FAILED", _exception_line(exc)
            raise
        finally:
            stack.pop()
            self._send(
                {
                    "kind": "step",
                    "path": handle.path,
                    "status": status,
                    "error": error,
                    "output_json": handle.output_json,
                    "at_ms": _now_ms(),
                }
            )

    def step(self, name: str) -> Any:
        """``with context.step(name) as step:`` — a named step; exceptions propagate."""
        return self._record(name, "execute")

    def tool(self, name: str, **inputs: Any) -> Any:
        """Call a native tool of the catalog; its call is a step of its own (primitive "execute")."""
        implementation = _TOOLS.get(name)
        if implementation is None:
            raise LookupError(f"unknown tool {name!r} (the catalog has: {', '.join(sorted(_TOOLS))})")
        with self._record(name, "execute", tool=name, input_json=_to_json(inputs, "tool input")) as step:
            result = implementation(**inputs)
            step.output(result)
        return result

    def ask(self, label: str, prompt: str = "", type: str = "text", options: list[str] | None = None) -> Any:
        """Pause until ResumeThread answers; return the answer's value (see the module docstring)."""
        if type not in ASK_TYPES:
            raise ValueError(f"context.ask type must be one of {', '.join(ASK_TYPES)}, got {type!r}")
        choices = [str(option) for option in options or ()]
        with self._lock:
            index = self._asks
            self._asks += 1
        with self._record(label, "ask", input_json=json.dumps({"prompt": prompt, "type": type})) as step:
            if index < len(self._answers):
                answer = self._answers[index]
                step.output_json = json.dumps(answer)
                return answer["value"] if isinstance(answer, dict) and "value" in answer else answer
            self.paused = True
            self._send(
                {
                    "kind": "ask",
                    "path": step.path,
                    "label": label,
                    "prompt": str(prompt),
                    "type": type,
                    "options": choices,
                }
            )
            raise _Paused()


def _tool_echo(**inputs: Any) -> Any:
    return inputs


def _tool_file_read(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return {"content": handle.read()}


def _tool_http_request(
    url: str, method: str = "GET", body: str | None = None, headers: Mapping[str, str] | None = None
) -> Any:
    import urllib.error
    import urllib.request

    data = body.encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return {"status": response.status, "body": response.read().decode("utf-8", "replace")}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body": exc.read().decode("utf-8", "replace")}


_TOOLS: dict[str, Any] = {
    "echo": _tool_echo,
    "file_read": _tool_file_read,
    "http_request": _tool_http_request,
}


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


class _Snapshot:
    """The process state a handler could change for the next run of this worker."""

    def __init__(self) -> None:
        self.env = dict(os.environ)
        self.cwd = os.getcwd()
        self.path = list(sys.path)
        self.modules = set(sys.modules)
        self.threads = set(threading.enumerate())
        self.signals = {sig: signal.getsignal(sig) for sig in _SIGNALS}

    def changes(self) -> list[str]:
        """What differs now, by name (empty when nothing does)."""
        changed = []
        if dict(os.environ) != self.env:
            changed.append("os.environ")
        try:
            if os.getcwd() != self.cwd:
                changed.append("working directory")
        except OSError:
            changed.append("working directory")
        if sys.path != self.path:
            changed.append("sys.path")
        added = set(sys.modules) - self.modules
        if added or len(sys.modules) != len(self.modules):
            shown = ", ".join(sorted(added)[:5])
            changed.append(f"loaded modules ({shown})" if shown else "loaded modules")
        if set(threading.enumerate()) != self.threads:
            changed.append("threads")
        if any(signal.getsignal(sig) != handler for sig, handler in self.signals.items()):
            changed.append("signal handlers")
        return changed


class _Runner:
    """Executes requests one at a time and reports whether a run left its mark on the process."""

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._base_env = dict(os.environ)
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

    def run(self, request: dict[str, Any]) -> None:
        run_id = int(request["run"])
        env: dict[str, str] | None = request["env"]
        os.environ.clear()
        os.environ.update(self._base_env)
        if env is not None:
            os.environ.update(env)
        before = _Snapshot()
        context = _Context(
            self._channel, run_id, env or {}, float(request["timeout_s"]), list(request.get("answers") or ())
        )
        status, code, output_json, error = "FAILED", "SCRIPT_ERROR", "", ""
        try:
            status, code, output_json, error = self._execute(request, context)
        finally:
            context.close()
            sys.modules.pop(HANDLER_MODULE, None)
        reasons = before.changes()
        if status == "FAILED" and code == "SCRIPT_ERROR":
            reasons.insert(0, "the handler raised")
        os.environ.clear()
        os.environ.update(self._base_env)
        self._channel.write(
            {
                "run": run_id,
                "kind": "result",
                "status": status,
                "code": code,
                "output_json": output_json,
                "error": error,
                "recycle": ", ".join(reasons),
            }
        )

    def _execute(self, request: dict[str, Any], context: _Context) -> tuple[str, str, str, str]:
        try:
            event = json.loads(request["event_json"])
        except ValueError as exc:
            return "FAILED", "SCRIPT_ERROR", "", f"event is not valid JSON: {exc}"
        source: str = request["source"]
        module = types.ModuleType(HANDLER_MODULE)
        module.__file__ = HANDLER_FILE
        sys.modules[HANDLER_MODULE] = module  # dataclasses, pickle and typing look the module up
        _register_source(source)
        try:
            exec(self._compile(source), module.__dict__)
            handler = getattr(module, "handler", None)
            if not callable(handler):
                return (
                    "FAILED",
                    "SCRIPT_ERROR",
                    "",
                    f"{HANDLER_FILE} defines no callable handler(event, context)",
                )
            result = handler(event, context)
        except _Paused:
            return "PAUSED", "", "", ""
        except BaseException as exc:
            if context.paused:  # the handler caught the pause and raised something else
                return "PAUSED", "", "", ""
            # BaseException: sys.exit() and KeyboardInterrupt in a handler fail the run, not the worker.
            return "FAILED", "SCRIPT_ERROR", "", _failure(exc)
        if context.paused:  # the handler swallowed the pause: it still waits for the answer
            return "PAUSED", "", "", ""
        problem = _json_problem(result, "return value")
        if problem is not None:
            return (
                "FAILED",
                "SCRIPT_OUTPUT_INVALID",
                "",
                f"handler returned a value that is not JSON: {problem}",
            )
        try:
            output_json = json.dumps(result, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            return "FAILED", "SCRIPT_OUTPUT_INVALID", "", f"handler returned a value that is not JSON: {exc}"
        if len(output_json) > MAX_OUTPUT_BYTES:
            too_big = f"handler output is {len(output_json)} bytes of JSON; the limit is {MAX_OUTPUT_BYTES}"
            return "FAILED", "SCRIPT_OUTPUT_INVALID", "", too_big
        return "COMPLETED", "", output_json, ""


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
    import linecache  # noqa: F401  (pre-loaded: every run registers its source there)

    runner = _Runner(channel)
    while True:
        request = channel.read()
        if request is None:
            return 0
        runner.run(request)


if __name__ == "__main__":
    sys.exit(main())
