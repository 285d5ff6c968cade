"""TEMPORARY stand-in for pytest_scriptum.devserver._runtime (another engineer's module) until it lands.

Registered by conftest.py only when the real module is missing. One subprocess per run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

_CHILD = r"""
import contextlib, json, os, sys, time, traceback
req = json.loads(sys.stdin.read())
start = time.monotonic()
steps = []
class Ctx:
    env = dict(os.environ) if req["env"] is not None else {}
    @contextlib.contextmanager
    def step(self, name):
        t0 = time.monotonic()
        try:
            yield
        except BaseException as e:
            err = f"{type(e).__name__}: {e}"
            steps.append([name, "error", (t0-start)*1000, (time.monotonic()-t0)*1000, err])
            raise
        steps.append([name, "ok", (t0-start)*1000, (time.monotonic()-t0)*1000, ""])
ns = {}
try:
    exec(compile(req["source"], "handler.py", "exec"), ns)
    out = json.dumps(ns["handler"](json.loads(req["event"]), Ctx()))
    res = {"status": "SUCCEEDED", "output": out, "error": ""}
except BaseException as e:
    res = {"status": "FAILED", "output": "", "error": f"{type(e).__name__}: {e}"}
res["steps"] = steps
print(json.dumps(res))
"""


@dataclass(frozen=True)
class RunRequest:
    source: str
    event_json: str
    env: Mapping[str, str] | None
    timeout_s: float


@dataclass(frozen=True)
class StepRecord:
    name: str
    status: str
    offset_ms: float
    duration_ms: float
    error: str


@dataclass(frozen=True)
class RunOutcome:
    status: Literal["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"]
    output_json: str
    error: str
    steps: tuple[StepRecord, ...]
    env_keys: tuple[str, ...]
    duration_ms: float


class HandlerRuntime:
    def __init__(self, *, max_concurrency: int = 64, warm_workers: int = 2) -> None:
        self._procs: set[subprocess.Popen[str]] = set()
        self._lock = threading.Lock()

    def run(self, request: RunRequest, cancel: threading.Event | None = None) -> RunOutcome:
        env = {"PATH": os.environ.get("PATH", ""), **(request.env or {})}
        keys = tuple(sorted(request.env or {}))
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        with self._lock:
            self._procs.add(proc)
        payload = json.dumps({"source": request.source, "event": request.event_json, "env": request.env})
        threading.Thread(target=lambda: _feed(proc, payload), daemon=True).start()
        status: str | None = None
        while proc.poll() is None:
            if cancel is not None and cancel.wait(0.01):
                status = "CANCELLED"
            elif time.monotonic() - start > request.timeout_s:
                status = "TIMED_OUT"
            if status:
                proc.kill()
                break
            time.sleep(0.005)
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait()
        with self._lock:
            self._procs.discard(proc)
        ms = (time.monotonic() - start) * 1000
        if status == "CANCELLED":
            return RunOutcome("CANCELLED", "", "cancelled", (), keys, ms)
        if status == "TIMED_OUT":
            return RunOutcome(
                "TIMED_OUT", "", f"handler exceeded its {request.timeout_s} s deadline", (), keys, ms
            )
        try:
            res = json.loads(out)
        except ValueError:
            return RunOutcome("FAILED", "", f"worker died: {proc.returncode}", (), keys, ms)
        steps = tuple(StepRecord(*s) for s in res["steps"])
        return RunOutcome(res["status"], res["output"], res["error"], steps, keys, ms)

    def close(self) -> None:
        with self._lock:
            for proc in self._procs:
                proc.kill()


def _feed(proc: subprocess.Popen[str], payload: str) -> None:
    try:
        assert proc.stdin is not None
        proc.stdin.write(payload)
        proc.stdin.close()
    except OSError:
        pass
