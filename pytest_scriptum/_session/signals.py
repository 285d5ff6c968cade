"""SIGINT and SIGTERM for the whole session (DESIGN section 3 "Rollback", issue 12 inputs 1-2).

CI cancels and job timeouts send SIGTERM; a human sends SIGINT. Until the gate owner starts to
finish the session, both raise ``KeyboardInterrupt`` in the main thread, as Ctrl-C always did:
pytest stops the test loop, the session's outstanding runs are cancelled
(``pytest_keyboard_interrupt``), and the evidence is written with pytest's own "interrupted" code
(SIGTERM used to kill the process with no evidence at all).

While the session finishes (gate, hooks, rollback call, verification, evidence) a signal must not
raise: an exception in the middle of a platform change leaves the platform changed and nothing
written. ``Interruption.holding()`` records the signal instead and stops every child process group
registered with ``child()`` (the verification re-run: SIGTERM to its group, SIGKILL after a grace
period); the rollback checks ``signal_name()`` before its call (nothing sent: pytest's own code)
and after it (the verification skipped or stopped, the state read back, exit 21).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["STOP_GRACE_S", "Interruption", "stop_group", "wait_stoppable", "watch_parent"]

STOP_GRACE_S = 10.0
"""How long a stopped child gets to write its own evidence after SIGTERM before SIGKILL."""

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_Handler = Callable[[int, "FrameType | None"], Any] | int | None


def stop_group(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to the process group led by ``proc`` (started with ``start_new_session``)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


class Interruption:
    """The session's SIGINT/SIGTERM handling, installed once in the process that owns the gate."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._holding = False
        self._children: list[subprocess.Popen[Any]] = []
        self._previous: dict[int, _Handler] = {}

    def install(self) -> Callable[[], None]:
        """Take over SIGINT and SIGTERM (main thread only; elsewhere nothing changes). Returns the
        function that restores the previous handlers."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        for sig in _SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self.restore

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def signal_name(self) -> str | None:
        """The signal received since the session started finishing (``SIGINT``, ``SIGTERM``), or None."""
        return signal.Signals(self.received).name if self.received is not None and self._holding else None

    @contextmanager
    def holding(self) -> Iterator[None]:
        """While the session finishes: a signal is recorded (``signal_name``) and stops the
        registered children instead of raising. A signal that arrived before (the smoke phase)
        is not carried over: pytest already handled it."""
        self._holding, self.received = True, None
        try:
            yield
        finally:
            self._holding = False

    @contextmanager
    def child(self, proc: subprocess.Popen[Any]) -> Iterator[None]:
        """Stop ``proc``'s process group when a signal arrives while it runs."""
        self._children.append(proc)
        try:
            if self.signal_name() is not None:
                stop_group(proc)
            yield
        finally:
            self._children.remove(proc)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        if not self._holding:
            raise KeyboardInterrupt(signal.Signals(signum).name)
        for proc in list(self._children):
            stop_group(proc)


def wait_stoppable(
    proc: subprocess.Popen[Any], interruption: Interruption | None, deadline_s: float
) -> int | None:
    """Wait for ``proc``: its exit code, or None when it ran past ``deadline_s`` or was stopped by
    a signal (then its group got SIGTERM, and SIGKILL ``STOP_GRACE_S`` later if still running)."""
    end = time.monotonic() + deadline_s
    stopped_at: float | None = None
    while True:
        try:
            # Short waits: a signal handler runs between them even where wait() is not interrupted.
            code = proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            code = None
        now = time.monotonic()
        if interruption is not None and interruption.signal_name() is not None and stopped_at is None:
            stop_group(proc)
            stopped_at = now
        if code is not None:
            if stopped_at is not None:
                stop_group(proc, signal.SIGKILL)  # whatever it started goes too
                return None
            return code
        if stopped_at is not None and now - stopped_at > STOP_GRACE_S:
            stop_group(proc, signal.SIGKILL)
        elif now > end and stopped_at is None:
            stop_group(proc, signal.SIGTERM)
            stopped_at = now


def watch_parent(interval_s: float = 0.5) -> threading.Thread:
    """In a verification re-run: when the parent dies without stopping it (kill -9), interrupt
    this process as a SIGTERM would (it writes its own evidence and ends) instead of running on as
    an orphan. A daemon thread that notices the parent's pid change (the child was re-parented)."""
    parent = os.getppid()

    def watch() -> None:
        tick = threading.Event()
        while os.getppid() == parent:
            tick.wait(interval_s)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="scriptum-parent-watch", daemon=True)
    thread.start()
    return thread
