"""Issue 16 benchmarks (paired baseline, repeats), one command; ratios are measured in the same run.

    python benchmarks/bench_issue16.py [--cases 50] [--sleep 0.5] [--repeat N] [--json FILE]

One 50-case suite (``_suites.write_plugin_suite``: one ``smoke_cases`` test, each case sleeping
``--sleep`` seconds on the platform) measured three ways against one DevServerProcess, interleaved:
plain (the baseline of the ratios), ``--scriptum-baseline=paired`` (every case also runs on the
rollback target, v1: twice the threads; goal < 1.3x) and ``--scriptum-repeat=5`` (five times the
threads; goal < 1.5x). Every measurement is the wall time of a whole ``python -m pytest``
subprocess (README.md, "Method"), exit code 0 checked; the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import bench_server
import grpc
from _suites import SLEEPY_SCRIPT, write_plugin_suite, write_seed
from _trivial import HANDLER
from run_all import ORG, Bench, Timings, machine

from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServerProcess

VARIANTS = {
    "plain": (),
    "paired": ("--scriptum-baseline=paired",),
    "repeat5": ("--scriptum-repeat=5",),
}
GOALS = {"paired": 1.3, "repeat5": 1.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--sleep", type=float, default=0.5, help="seconds each case sleeps on the platform")
    parser.add_argument("--repeat", type=int, default=3, help="measure each variant N times; median")
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    args = parser.parse_args()
    if args.repeat < 1 or args.cases < 1:
        parser.error("--repeat and --cases must be >= 1")
    before = machine()
    timings = Timings()
    threads: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="scriptum-bench16-") as tmp:
        root = Path(tmp)
        seed = write_seed(root / "seed", HANDLER)
        with DevServerProcess(
            data_dir=root / "data", seed=seed, token=bench_server.TOKEN, org=ORG, throwaway=True
        ) as server:
            bench = Bench(root, server.addresses)
            with grpc.insecure_channel(bench.addresses.grpc) as channel:
                # Grow the handler worker pool once (64: the auto cap), so no measurement pays for it.
                bench_server.bench_server(pb_grpc.ScriptumServiceStub(channel), 128, 64)
            suite = write_plugin_suite(root / "suite", SLEEPY_SCRIPT, args.cases, args.sleep)
            for number in range(args.repeat):
                for name, extra in VARIANTS.items():
                    print(f"[{number + 1}/{args.repeat}] {name} ...", file=sys.stderr, flush=True)
                    bundle = root / f"{name}.json"
                    wall = bench.pytest(
                        suite, bench.plugin_args(SLEEPY_SCRIPT, f"--scriptum-evidence={bundle}", *extra)
                    )
                    timings.add(name, wall)
                    data = json.loads(bundle.read_text())
                    assert data["verdict"] == "pass", data["reason"]
                    threads[name] = _threads(data)
    after = machine()
    base = timings.median("plain")
    lines = [
        f"machine: nproc={before['nproc']}  cpu={before['cpu']}  python={before['python']}",
        f"load average before: {before['loadavg_1_5_15']}  after: {after['loadavg_1_5_15']}  "
        f"(repeat={args.repeat}; median wall time of a whole pytest subprocess)",
        "",
        f"{args.cases} cases x {args.sleep} s on the platform (ratio to the plain suite)",
    ]
    for name in VARIANTS:
        seconds = timings.median(name)
        goal = f"goal < {GOALS[name]}x" if name in GOALS else "(baseline)"
        ratio = seconds / base
        lines.append(f"  {name:<10} {seconds:>8.2f} s {ratio:>7.3f}x  {threads[name]:>4} threads  {goal}")
    print("\n".join(lines))
    if args.json is not None:
        samples = {
            "machine_before": before,
            "machine_after": after,
            "timings": timings.samples,
            "medians": {k: statistics.median(v) for k, v in timings.samples.items()},
            "threads": threads,
        }
        args.json.write_text(json.dumps(samples, indent=2))


def _threads(bundle: dict) -> int:
    """Threads the session ran, from its bundle: one per case, N per repeated case, two sides paired."""
    total = 0
    for test in bundle["tests"]:
        side = len(test["repeat"]["attempts"]) if test["repeat"] else 1
        total += side * (2 if test["baseline"] else 1)
    return total


if __name__ == "__main__":
    main()
