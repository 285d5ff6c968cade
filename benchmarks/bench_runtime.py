"""Trivial handler runs per second through HandlerRuntime (warm worker pool) vs a fresh python per run.

Both are measured in the same invocation, on the same machine, with the same client thread counts.
The baseline is the naive design: ``subprocess.run`` of a fresh ``python -c`` per run.
Usage: python benchmarks/bench_runtime.py [--runs 2000] [--baseline-runs 200] [--threads 1,8,32]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

from _trivial import HANDLER, bench_baseline, runs_per_second, thread_counts

from pytest_scriptum.devserver._runtime import HandlerRuntime, RunRequest


def _ignore_frames(frame: Mapping[str, Any]) -> None:
    """Steps, logs and yields of a run: the trivial handler has none worth keeping."""


def bench_runtime(runtime: HandlerRuntime, runs: int, threads: int) -> float:
    def one(i: int) -> None:
        event = json.dumps({"n": i})
        request = RunRequest(org="bench", source=HANDLER, event_json=event, env=None, timeout_s=30.0)
        outcome = runtime.run(request, _ignore_frames)
        if outcome.status != "COMPLETED" or json.loads(outcome.output_json) != {"n": i + 1}:
            raise RuntimeError(f"run {i} ended {outcome.status} {outcome.error_code}: {outcome.error}")

    return runs_per_second(one, runs, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=2000, help="runs per thread count through the runtime")
    parser.add_argument("--baseline-runs", type=int, default=200, help="runs per thread count, baseline")
    parser.add_argument("--threads", type=thread_counts, default=[1, 8, 32], help="client thread counts")
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
