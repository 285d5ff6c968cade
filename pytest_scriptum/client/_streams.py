"""Server streams as both transports give them, and the watcher that aborts them on cancel.

A ``Stream`` yields the messages of one server-streaming call as dicts of proto field names and
raises ScriptumError for a failure. ``abort()`` may be called from any thread: the reader then
stops with ScriptumError CANCELLED. Reading blocks in the transport, so a caller's cancel event
cannot be checked between messages; ``AbortOnCancel`` does it instead — one daemon thread per
client, alive only while a cancellable stream is open, looking at the events every 50 ms.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["CANCEL_POLL_S", "AbortOnCancel", "Stream"]

# How often open cancellable streams are checked against their cancel events.
CANCEL_POLL_S = 0.05


class Stream(ABC):
    """One server-streaming call in progress."""

    @abstractmethod
    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The messages, in order; ScriptumError on failure (CANCELLED after ``abort``)."""

    @abstractmethod
    def abort(self) -> None:
        """Stop the call from any thread (idempotent); the reader then gets CANCELLED."""

    @abstractmethod
    def close(self) -> None:
        """Release the call from the reading thread once done with it (idempotent)."""


class AbortOnCancel:
    """Aborts registered streams whose cancel event is set."""

    def __init__(self, poll_s: float = CANCEL_POLL_S) -> None:
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._open: dict[int, tuple[threading.Event, Stream]] = {}
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    @contextmanager
    def watching(self, cancel: threading.Event | None, stream: Stream) -> Iterator[Stream]:
        """``stream``, aborted as soon as ``cancel`` is set while the block runs."""
        if cancel is None:
            yield stream
            return
        key = id(stream)
        with self._lock:
            self._open[key] = (cancel, stream)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="scriptum-cancel", daemon=True)
                self._thread.start()
        try:
            if cancel.is_set():
                stream.abort()
            yield stream
        finally:
            with self._lock:
                self._open.pop(key, None)

    def close(self) -> None:
        """Stop the watcher thread (streams still open are left to their own deadlines)."""
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self._poll_s):
            with self._lock:
                if not self._open:
                    self._thread = None  # the next watching() starts a new one
                    return
                due = [stream for event, stream in self._open.values() if event.is_set()]
            for stream in due:
                stream.abort()
