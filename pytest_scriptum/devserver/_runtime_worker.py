"""Server-side handle of one worker process: spawn, framed send/receive with a timeout, kill.

One ``WorkerProcess`` is owned by one run at a time; only ``terminate`` may be called from another
thread (the runtime's close()). POSIX only: workers get their own process group so a kill also
takes down whatever a handler spawned.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["WORKER_SCRIPT", "WorkerFailure", "WorkerProcess"]

WORKER_SCRIPT = str(Path(__file__).with_name("_worker.py"))
_READ_CHUNK = 1 << 16
_EXIT_WAIT_S = 2.0


class WorkerFailure(Exception):
    """The worker process ended or broke the protocol before the run finished."""


class WorkerProcess:
    """A long-lived ``python -I _worker.py`` child speaking length-prefixed JSON over its pipes."""

    def __init__(self, env: Mapping[str, str], cwd: str) -> None:
        # -I: PYTHON* variables, the user site and the script's directory stay out of the child.
        self._proc = subprocess.Popen(
            [sys.executable, "-I", WORKER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # Handler prints go nowhere: an undrained stderr pipe of the server must never block a run.
            stderr=subprocess.DEVNULL,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            bufsize=0,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in_fd = self._proc.stdin.fileno()
        self._out_fd = self._proc.stdout.fileno()
        self._poller = select.poll()
        self._poller.register(self._out_fd, select.POLLIN)
        self._buffer = bytearray()
        self._kill_lock = threading.Lock()
        self._killed = False
        self._disposed = False
        self.idle_since = time.monotonic()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def send(self, frame: Mapping[str, Any]) -> None:
        body = json.dumps(frame).encode()
        data = memoryview(len(body).to_bytes(4, "big") + body)
        try:
            while data:
                written = os.write(self._in_fd, data)
                data = data[written:]
        except OSError as exc:  # BrokenPipeError: it died before reading the request
            raise WorkerFailure(f"could not send the run to the worker process: {exc}") from exc

    def receive(self, timeout_s: float) -> dict[str, Any] | None:
        """The next frame, or None when none completed within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            frame = self._pop_frame()
            if frame is not None:
                return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._poller.poll(max(0, int(remaining * 1000) + 1)):
                if time.monotonic() >= deadline:
                    return None
                continue
            chunk = os.read(self._out_fd, _READ_CHUNK)
            if not chunk:
                raise WorkerFailure(self.exit_description())
            self._buffer += chunk

    def _pop_frame(self) -> dict[str, Any] | None:
        if len(self._buffer) < 4:
            return None
        size = int.from_bytes(self._buffer[:4], "big")
        if len(self._buffer) < 4 + size:
            return None
        body = bytes(self._buffer[4 : 4 + size])
        del self._buffer[: 4 + size]
        try:
            frame = json.loads(body)
        except ValueError as exc:
            raise WorkerFailure(f"the worker process sent a malformed message: {exc}") from exc
        if not isinstance(frame, dict):
            raise WorkerFailure(f"the worker process sent a {type(frame).__name__}, not a message object")
        return frame

    def exit_description(self) -> str:
        """How the process ended, e.g. 'exited with code 3' or 'was killed by signal 11 (SIGSEGV)'."""
        try:
            code = self._proc.wait(timeout=_EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self.terminate()
            return "closed its pipe but did not exit, so it was killed"
        if code >= 0:
            return f"exited with code {code}"
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"was killed by signal {-code} ({name})"

    def terminate(self) -> None:
        """Kill the worker and its process group, and reap it. Idempotent and thread-safe."""
        with self._kill_lock:
            if not self._killed:
                self._killed = True
                try:
                    os.killpg(self._proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass  # already gone and reaped
        self._proc.wait()

    def dispose(self) -> None:
        """Terminate and close the pipes; only the owner of the worker may call this."""
        self.terminate()
        if self._disposed:
            return
        self._disposed = True
        self._poller.unregister(self._out_fd)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()
        self._proc.stdout.close()
