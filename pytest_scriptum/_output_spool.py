"""Outputs of finished runs that no test has taken yet, kept on disk instead of in memory.

Early dispatch (DESIGN section 6) finishes runs before their tests start, so a session whose
threads return large outputs would otherwise hold every one of them at once. A finished run's
output of at least ``_limits.LARGE_OUTPUT_BYTES`` (its size as the platform reported it) whose test is not
already waiting is written as JSON to a private temporary directory (mode 0700, files 0600,
removed when the dispatcher closes) and read back once, when its test takes the result.

The files hold the output as the platform returned it, unredacted, like the test's own memory
does; they live only while the session runs (a kill -9 leaves the directory in the system's
temporary directory, named ``scriptum-spool-*``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

__all__ = ["OutputSpool"]


class OutputSpool:
    """A private directory of spooled outputs, created at the first ``put``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dir: Path | None = None
        self._count = 0

    def put(self, output: Any) -> Path:
        """Write ``output`` (a JSON-able value, as ``decode_output`` gave it) and return its file;
        OSError (e.g. a full disk) leaves no file behind."""
        data = json.dumps(output, ensure_ascii=False).encode("utf-8")
        with self._lock:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="scriptum-spool-"))  # mode 0700
            self._count += 1
            path = self._dir / f"{self._count}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
        except OSError:
            path.unlink(missing_ok=True)  # a half-written file is never read back
            raise
        return path

    @staticmethod
    def take(path: Path) -> Any:
        """The output written to ``path``, which is removed."""
        try:
            return json.loads(path.read_bytes().decode("utf-8"))
        finally:
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """Remove the directory and whatever no test took (idempotent)."""
        with self._lock:
            directory, self._dir = self._dir, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
