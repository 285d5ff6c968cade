"""Trivial handler runs per second through HandlerRuntime (warm worker pool) vs a fresh python per run.

Both are measured in the same invocation, on the same machine, with the same client thread counts.
The baseline is the naive design: ``subprocess.run`` of a fresh ``python -c`` per run.
Usage: python benchmarks/bench_runtime.py [--runs 2000] [--baseline-runs 200] [--threads 1,8,32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from pytest_scriptum.devserver._runtime import HandlerRuntime, RunRequest

HANDLER = "def handler(event, context):\n    return {'n': event['n'] + 1}\n"


def bench_runtime(runtime: HandlerRuntime, runs: int, threads: int) -> float:
    def one(i: int) -> None:
        outcome = runtime.run(RunRequest(HANDLER, json.dumps({"n": i}), None, 30.0))
        if outcome.status != "SUCCEEDED" or json.loads(outcome.output_json) != {"n": i + 1}:
            raise RuntimeError(f"run {i} ended {outcome.status}: {outcome.error}")

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(runs)))
    return runs / (time.perf_counter() - start)


def bench_baseline(runs: int, threads: int) -> float:
    code = HANDLER + "import json, sys\nprint(json.dumps(handler(json.loads(sys.argv[1]), None)))\n"

    def one(i: int) -> None:
        done = subprocess.run(
            [sys.executable, "-c", code, json.dumps({"n": i})], check=True, capture_output=True
        )
        if json.loads(done.stdout) != {"n": i + 1}:
            raise RuntimeError(f"baseline run {i} printed {done.stdout!r}")

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(runs)))
    return runs / (time.perf_counter() - start)


def _thread_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--threads: {text!r} is not a comma-separated list of ints"
        ) from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--threads: every count must be >= 1, got {text!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=2000, help="runs per thread count through the runtime")
    parser.add_argument("--baseline-runs", type=int, default=200, help="runs per thread count, baseline")
    parser.add_argument("--threads", type=_thread_counts, default=[1, 8, 32], help="client thread counts")
    args = parser.parse_args()

    rows: list[tuple[int, float, float]] = []
    with HandlerRuntime(max_concurrency=max(args.threads)) as runtime:
        bench_runtime(runtime, min(200, args.runs), max(args.threads))  # warm-up: grow the pool once
        for threads in args.threads:
            rows.append(
                (
                    threads,
                    bench_runtime(runtime, args.runs, threads),
                    bench_baseline(args.baseline_runs, threads),
                )
            )

    print(f"python {sys.version.split()[0]}, trivial handler, runs/s (higher is better)")
    print(f"{'threads':>8} {'runtime':>10} {'fresh python':>13} {'ratio':>7}")
    for threads, warm, fresh in rows:
        print(f"{threads:>8} {warm:>10.0f} {fresh:>13.1f} {warm / fresh:>6.1f}x")


if __name__ == "__main__":
    main()
