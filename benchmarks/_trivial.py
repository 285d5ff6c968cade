"""What bench_runtime.py and bench_server.py share: the trivial handler, the rate loop, and the
naive baseline (a fresh ``python -c`` per run) that both compare against in the same run."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

HANDLER = "def handler(event, context):\n    return {'n': event['n'] + 1}\n"


def runs_per_second(one: Callable[[int], None], runs: int, threads: int) -> float:
    """Call ``one(i)`` for i in range(runs) from ``threads`` client threads; return calls per second."""
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(runs)))
    return runs / (time.perf_counter() - start)


def bench_baseline(runs: int, threads: int) -> float:
    """The naive design: a fresh interpreter per run, checked like the real runs."""
    code = HANDLER + "import json, sys\nprint(json.dumps(handler(json.loads(sys.argv[1]), None)))\n"

    def one(i: int) -> None:
        done = subprocess.run(
            [sys.executable, "-c", code, json.dumps({"n": i})], check=True, capture_output=True
        )
        if json.loads(done.stdout) != {"n": i + 1}:
            raise RuntimeError(f"baseline run {i} printed {done.stdout!r}")

    return runs_per_second(one, runs, threads)


def thread_counts(text: str) -> list[int]:
    """argparse type for --threads 1,8,32."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--threads: {text!r} is not a comma-separated list of ints"
        ) from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--threads: every count must be >= 1, got {text!r}")
    return counts
