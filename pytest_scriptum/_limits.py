"""The platform's limits and name formats as the plugin side knows them: one set, read by the
options, the markers and the client (the embedded server enforces its own copy: it shares nothing
but the proto).

Standard library only, and nothing of the package: every layer may read it.
Sources: the platform's public API documentation (results and streaming pages) and DESIGN section 5.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "DEFAULT_THREAD_TIMEOUT_S",
    "ENV_KEY",
    "MAX_REQUEST_BYTES",
    "MAX_STREAM_CHUNK_BYTES",
    "MAX_THREAD_TIMEOUT_S",
    "RESULT_OUTPUT_CAP_BYTES",
    "SCRIPT_NAME",
]

SCRIPT_NAME: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
"""A script name (``fullmatch``): lowercase letters, digits and '-', at most 64, e.g. ``invoice-parser``."""

ENV_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
"""An env key (``fullmatch``), also the name of an environment variable: at most 128 characters."""

MAX_THREAD_TIMEOUT_S: Final = 3600.0
"""CreateThread's ``timeout`` cap, seconds (DESIGN section 5: "max 3600s"); a longer one is refused."""

DEFAULT_THREAD_TIMEOUT_S: Final = 60.0
"""A thread's deadline when CreateThread's ``timeout`` is empty, seconds (``"" = 60s``)."""

RESULT_OUTPUT_CAP_BYTES: Final = 4 * 1024 * 1024
"""GetThreadResult cuts ``output_data`` here and sets ``output_truncated`` (documented "≈ 4 MB")."""

MAX_STREAM_CHUNK_BYTES: Final = 16 * 1024 * 1024
"""The upper clamp of StreamThreadResult's ``max_chunk_bytes`` (documented "64 KB..16 MB")."""

MAX_REQUEST_BYTES: Final = 4 * 1024 * 1024
"""The largest request the plugin sends over gRPC (4 MiB: gRPC's default receive limit, which a
server keeps unless configured otherwise; the platform documents none)."""
