"""The one atomic file writer of the evidence: a reader never sees half a file, and files get the
permissions any other file the user creates gets (0666 less the umask, not mkstemp's 0600); and the
rewrite of a directory's files through the redactor (``mask_tree``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["mask_tree", "write_atomic"]


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file in the same directory,
    then rename it over ``path``. Creates the parent directories. OSError when it cannot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    # O_EXCL on a fresh random name: never another file; mode 0o666 so the kernel applies the umask.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def mask_tree(directory: Path, mask: Callable[[str], str], *, since: float) -> list[Path]:
    """Rewrite (atomically) every UTF-8 file directly in ``directory`` modified at or after
    ``since`` (seconds since the epoch) whose text ``mask`` changes; the rewritten paths. Files
    that are not UTF-8 text (screenshots) are left as they are; a missing directory is empty."""
    changed = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    for path in entries:
        try:
            if not path.is_file() or path.stat().st_mtime < since:
                continue
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        masked = mask(text)
        if masked != text:
            write_atomic(path, masked)
            changed.append(path)
    return changed
