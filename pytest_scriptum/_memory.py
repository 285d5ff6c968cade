"""Freed large blocks go back to the operating system (glibc only).

glibc's malloc raises its mmap threshold each time a large mmapped block is freed, up to 32 MiB
(``mallopt(3)``, "M_MMAP_THRESHOLD ... dynamic"); after the first multi-MiB thread output is
received and freed, the next ones come from the per-thread heaps instead, which keep the freed
memory. A session receiving many large outputs on its run threads then grows by several times
their size (measured: ten 5 MiB outputs, +58 to +83 MB peak RSS with the sliding threshold,
+23 MB with it fixed; ``benchmarks/bench_issue18.py memory``). Fixing the threshold at glibc's
own initial value (128 KiB) turns the sliding off, which is all this module does, once per
process and only when a large output arrives (``_limits.LARGE_OUTPUT_BYTES``). On another C
library it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import threading

__all__ = ["MMAP_THRESHOLD_BYTES", "keep_large_blocks_returnable"]

MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's initial M_MMAP_THRESHOLD (malloc.h DEFAULT_MMAP_THRESHOLD_MIN)
_M_MMAP_THRESHOLD = -3  # malloc.h

_lock = threading.Lock()
_applied: bool | None = None  # None until tried; then whether mallopt accepted it


def keep_large_blocks_returnable() -> bool:
    """Fix glibc's mmap threshold (idempotent, thread-safe); whether it is in effect."""
    global _applied
    with _lock:
        if _applied is None:
            _applied = _fix_threshold()
        return _applied


def _fix_threshold() -> bool:
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return False
    except (AttributeError, ValueError, OSError):  # not a glibc system
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # no mallopt in this process's C library
        return False
