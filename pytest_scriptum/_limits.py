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
    "AUTO_CONCURRENCY_CAP",
    "AUTO_CONCURRENCY_START",
    "DEFAULT_THREAD_TIMEOUT_S",
    "ENV_KEY",
    "LARGE_OUTPUT_BYTES",
    "MAX_INCIDENT_CHARS",
    "MAX_OPTION_TEXT",
    "MAX_PATH_CHARS",
    "MAX_REQUEST_BYTES",
    "MAX_RETRIES",
    "MAX_SHARDS",
    "MAX_STREAM_CHUNK_BYTES",
    "MAX_THREAD_TIMEOUT_S",
    "MIN_THREAD_TIMEOUT_S",
    "RESULT_OUTPUT_CAP_BYTES",
    "RETRY_BUDGET_MIN",
    "RETRY_BUDGET_RATIO",
    "SCRIPT_NAME",
]

SCRIPT_NAME: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
"""A script name (``fullmatch``): lowercase letters, digits and '-', at most 64, e.g. ``invoice-parser``."""

ENV_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
"""An env key (``fullmatch``), also the name of an environment variable: at most 128 characters."""

MAX_THREAD_TIMEOUT_S: Final = 3600.0
"""CreateThread's ``timeout`` cap, seconds (DESIGN section 5: "max 3600s"); a longer one is refused."""

MIN_THREAD_TIMEOUT_S: Final = 1.0
"""The shortest per-thread deadline ``--scriptum-timeout`` accepts, seconds (DESIGN section 2: ">= 1")."""

MAX_RETRIES: Final = 10
"""The most retries ``--scriptum-retries`` accepts per call (DESIGN section 2: "at most 10")."""

RETRY_BUDGET_MIN: Final = 10
"""Retries a session's client may always spend in total, whatever its call count (one call can
use its full ``MAX_RETRIES``)."""

RETRY_BUDGET_RATIO: Final = 0.2
"""Beyond ``RETRY_BUDGET_MIN``, retries may add at most this share of the calls made (Finagle's
``RetryBudget``, gRPC's retry throttling): in an outage a session adds 20 % load, never 10x."""

MAX_INCIDENT_CHARS: Final = 200
"""The longest incident id (DESIGN section 2: "printable, no control characters, <= 200 chars")."""

MAX_OPTION_TEXT: Final = 256
"""The longest free-text option value (organization id and name, endpoint, URL) the plugin sends
in a header or passes to a child process; ours, the platform documents none."""

MAX_PATH_CHARS: Final = 4096
"""The longest path option (PATH_MAX on Linux)."""

MAX_SHARDS: Final = 1000
"""The most shards ``--scriptum-shard=I/N`` splits a suite into (issue 17: 1 <= I <= N <= 1000; a CI
matrix far wider than that is a typo, and the merge reads every shard's bundle)."""

DEFAULT_THREAD_TIMEOUT_S: Final = 60.0
"""A thread's deadline when CreateThread's ``timeout`` is empty, seconds (``"" = 60s``)."""

RESULT_OUTPUT_CAP_BYTES: Final = 4 * 1024 * 1024
"""GetThreadResult cuts ``output_data`` here and sets ``output_truncated`` (documented "≈ 4 MB")."""

MAX_STREAM_CHUNK_BYTES: Final = 16 * 1024 * 1024
"""The upper clamp of StreamThreadResult's ``max_chunk_bytes`` (documented "64 KB..16 MB")."""

MAX_REQUEST_BYTES: Final = 4 * 1024 * 1024
"""The largest request the plugin sends over gRPC (4 MiB: gRPC's default receive limit, which a
server keeps unless configured otherwise; the platform documents none)."""

AUTO_CONCURRENCY_START: Final = 4
"""``--scriptum-concurrency=auto``: the in-flight limit a process starts with (DESIGN section 6);
ours, small enough for any rate-limited platform to take."""

AUTO_CONCURRENCY_CAP: Final = 64
"""``--scriptum-concurrency=auto``: the most thread runs one process keeps in flight, however
well the platform keeps up (DESIGN section 6 "within a cap"); ours."""

LARGE_OUTPUT_BYTES: Final = 1024 * 1024
"""A thread output at least this large (bytes) is "large" (DESIGN section 6, memory): it is spooled
to disk while no test has taken it, and receiving one makes freed large blocks go back to the
operating system (``_memory``)."""

MAX_REPEAT: Final = 20
"""The most attempts of one smoke case (``scriptum(repeat=N)``, ``--scriptum-repeat``; DESIGN
section 8 "Repeats"). The design names no cap: ours keeps one case from occupying the platform
with hundreds of threads (a 50-case suite at the cap is 1000 threads)."""
