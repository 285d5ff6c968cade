"""A progress line in the parent's terminal while the verification re-run works: "tests done of
total", so a person watching a rollback sees the re-run move (issue 14; the re-run itself is
``_session.verification``).

Both ends share one small file beside the re-run's bundle (``verification-v3.progress`` for
``verification-v3.json``; ``progress_path``): the child (``ProgressFile``, registered in every
verification re-run that writes a bundle) rewrites it atomically as ``"<done> <total>\\n"`` after
each test; the parent (``shown``) reads it from a daemon thread while it waits for the child and
prints the line — rewritten in place on a terminal, one line per change (at most every
``_QUIET_S`` seconds) in a CI log — then deletes the file.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_scriptum.evidence._files import write_atomic

__all__ = ["ProgressFile", "progress_path", "read_progress", "shown"]

_POLL_S = 0.5  # how often the parent looks at the file
_QUIET_S = 5.0  # without a terminal, at most one line per this many seconds (plus the last one)


def progress_path(bundle: Path) -> Path:
    """The progress file of the re-run whose bundle is ``bundle``."""
    return bundle.with_suffix(".progress")


def read_progress(path: Path) -> tuple[int, int] | None:
    """``(done, total)`` from a progress file, or None while there is none (or half a line)."""
    try:
        done, total = path.read_text(encoding="utf-8").split()
        return int(done), int(total)
    except (OSError, ValueError):
        return None


class ProgressFile:
    """Child end: counts finished tests of this session and writes ``progress_path(bundle)``."""

    def __init__(self, bundle: Path) -> None:
        self.path = progress_path(bundle)
        self.total = 0
        self.done = 0

    def _write(self) -> None:
        with contextlib.suppress(OSError):  # progress is a courtesy: never a reason to fail
            write_atomic(self.path, f"{self.done} {self.total}\n")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)
        self._write()

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.done += 1
        self._write()


def _line(target: int, progress: tuple[int, int] | None) -> str:
    if progress is None:
        return f"scriptum: verification re-run on v{target}: starting"
    done, total = progress
    return f"scriptum: verification re-run on v{target}: {done}/{total} tests done"


@contextlib.contextmanager
def shown(config: pytest.Config, bundle: Path, *, target: int) -> Iterator[None]:
    """Parent end: while the body runs the re-run whose bundle is ``bundle``, show its progress in
    this session's terminal (nothing without a terminal reporter, e.g. ``-p no:terminal``)."""
    reporter: Any = config.pluginmanager.get_plugin("terminalreporter")
    path = progress_path(bundle)
    path.unlink(missing_ok=True)  # an earlier re-run's
    if reporter is None:
        yield
        return
    tty = bool(getattr(reporter, "isatty", False))
    stop = threading.Event()
    shown_last: list[str] = []

    def show(text: str) -> None:
        if tty:
            reporter.rewrite(text, bold=True)
        else:
            reporter.write_line(text)
        shown_last[:] = [text]

    def watch() -> None:
        printed_at = 0.0
        while not stop.wait(_POLL_S):
            text = _line(target, read_progress(path))
            now = time.monotonic()
            if shown_last and text == shown_last[0]:
                continue
            if tty or now - printed_at >= _QUIET_S:
                show(text)
                printed_at = now

    reporter.ensure_newline()
    show(_line(target, None))
    thread = threading.Thread(target=watch, name="scriptum-verification-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        final = read_progress(path)
        if final is not None and (not shown_last or shown_last[0] != _line(target, final)):
            show(_line(target, final))
        if tty:
            reporter.write_line("")
        path.unlink(missing_ok=True)
