"""Issue 18 ("fast at the defaults") benchmarks, one command each; ratios are measured in the same run.

    python benchmarks/bench_issue18.py latency    # 50 x 0.5 s, 500 x 0.35 s: defaults, serial stub, xdist
    python benchmarks/bench_issue18.py throttled  # a platform refusing runs beyond K = 10 in flight
    python benchmarks/bench_issue18.py store      # 500 cases against 100,000 stored threads vs an empty store
    python benchmarks/bench_issue18.py fixed      # fixed cost: embedded vs remote endpoint vs -p no:scriptum
    python benchmarks/bench_issue18.py memory     # peak RSS: 2,000 cases vs the stub file; ten 5 MiB outputs
    python benchmarks/bench_issue18.py all        # the five, in this order
    options: --repeat N (median of N, interleaved), --json FILE (raw samples)

Every measurement is the wall time of a whole ``python -m pytest`` subprocess (see README.md,
"Method"); the suites are run_all.py's (``_suites``). A DevServerProcess serves them as a remote
endpoint, except the embedded-session measurement, which starts its own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_server
import grpc
from _suites import SLEEPY_SCRIPT, write_direct_suite, write_plugin_suite, write_seed
from _trivial import HANDLER
from run_all import CANDIDATE, ORG, Bench, Timings, machine

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServerProcess

THROTTLE_K = 10
STORED_THREADS = 100_000


class Run:
    """One server (started by ``server()``) and the samples of this command."""

    def __init__(self, root: Path, repeat: int) -> None:
        self.root = root
        self.repeat = repeat
        self.seed = write_seed(root / "seed", HANDLER)
        self.timings = Timings()
        self.notes: dict[str, Any] = {}

    def server(self, data: Path, *, throwaway: bool = True) -> DevServerProcess:
        return DevServerProcess(
            data_dir=data, seed=self.seed, token=bench_server.TOKEN, org=ORG, throwaway=throwaway
        )

    def measure(self, variants: list[tuple[str, Callable[[], float]]]) -> None:
        """Each variant ``repeat`` times, interleaved (so all see the same machine states)."""
        for number in range(self.repeat):
            for name, variant in variants:
                print(f"[{number + 1}/{self.repeat}] {name} ...", file=sys.stderr, flush=True)
                self.timings.add(name, variant())

    def med(self, name: str) -> float:
        return self.timings.median(name)


def _warm(bench: Bench) -> None:
    # Grow the handler worker pool once (64: the auto cap), so no measurement pays for it.
    with grpc.insecure_channel(bench.addresses.grpc) as channel:
        bench_server.bench_server(pb_grpc.ScriptumServiceStub(channel), 128, 64)


def _admin(bench: Bench) -> tuple[grpc.Channel, pb_grpc.ScriptumDevAdminStub]:
    channel = grpc.insecure_channel(bench.addresses.grpc)
    return channel, pb_grpc.ScriptumDevAdminStub(channel)


def _row(label: str, seconds: float, base: float, note: str = "") -> str:
    return f"  {label:<52} {seconds:>8.2f} s {seconds / base:>8.3f}x  {note}"


# ---- latency ----------------------------------------------------------------------------------


def bench_latency(run: Run) -> list[str]:
    lines: list[str] = []
    with run.server(run.root / "latency-data") as server:
        bench = Bench(run.root, server.addresses)
        _warm(bench)
        for cases, sleep_s in ((50, 0.5), (500, 0.35)):
            lines += _latency(run, bench, cases, sleep_s)
    return lines


def _latency(run: Run, bench: Bench, cases: int, sleep_s: float) -> list[str]:
    tag = f"{cases}x{sleep_s}"
    plugin = write_plugin_suite(run.root / f"lat-plugin-{tag}", SLEEPY_SCRIPT, cases, sleep_s)
    direct = write_direct_suite(run.root / f"lat-direct-{tag}", SLEEPY_SCRIPT, CANDIDATE, cases, sleep_s)
    bundle = run.root / f"lat-{tag}.json"
    default = bench.plugin_args(SLEEPY_SCRIPT, f"--scriptum-evidence={bundle}")
    fixed8 = bench.plugin_args(SLEEPY_SCRIPT, "--scriptum-concurrency=8")
    xdist8 = bench.plugin_args(SLEEPY_SCRIPT, "--scriptum-concurrency=1", "-n", "8")
    run.measure(
        [
            (f"{tag}.default", lambda: bench.pytest(plugin, default)),
            (f"{tag}.fixed8", lambda: bench.pytest(plugin, fixed8)),
            (f"{tag}.xdist8", lambda: bench.pytest(plugin, xdist8)),
            (f"{tag}.direct", lambda: bench.pytest(direct, [])),
        ]
    )
    record = json.loads(bundle.read_text())["concurrency"]
    run.notes[f"{tag}.concurrency"] = record
    base = run.med(f"{tag}.direct")
    goal = "goal <= 0.100x" if cases == 50 else "goal <= 0.040x"
    return [
        f"latency {cases} cases x {sleep_s} s (ratio to the serial direct-stub file)",
        _row("direct gRPC stub, serial (baseline)", base, base),
        _row("plugin, defaults (--scriptum-concurrency=auto)", run.med(f"{tag}.default"), base, goal),
        _row("plugin, --scriptum-concurrency=8 (the old default)", run.med(f"{tag}.fixed8"), base),
        _row("plugin, xdist -n 8, --scriptum-concurrency=1", run.med(f"{tag}.xdist8"), base),
        f"  auto's course (last run): {record}",
        "",
    ]


# ---- throttled --------------------------------------------------------------------------------


def bench_throttled(run: Run, cases: int = 200, sleep_s: float = 0.35) -> list[str]:
    physical = math.ceil(cases / THROTTLE_K) * sleep_s
    stats: list[dict[str, Any]] = []
    with run.server(run.root / "throttle-data") as server:
        bench = Bench(run.root, server.addresses)
        _warm(bench)
        plugin = write_plugin_suite(run.root / "throttle-plugin", SLEEPY_SCRIPT, cases, sleep_s)
        bundle = run.root / "throttle.json"
        channel, admin = _admin(bench)
        with channel:
            admin.SetFaults(pb.Faults(max_in_flight=THROTTLE_K), metadata=bench.metadata)

            def auto() -> float:
                admin.ResetStats(pb.ResetStatsRequest(), metadata=bench.metadata)
                # Exit code 0 is checked: every test passed, none errored.
                wall = bench.pytest(plugin, bench.plugin_args(SLEEPY_SCRIPT, f"--scriptum-evidence={bundle}"))
                counters = admin.GetStats(pb.GetStatsRequest(), metadata=bench.metadata)
                record = json.loads(bundle.read_text())
                stats.append(
                    {
                        "runs_throttled": counters.runs_throttled,
                        "server_max_threads_in_flight": counters.max_threads_in_flight,
                        "runs_started": counters.runs_started,
                        "errors": record["gate"]["errors"],
                        "concurrency": record["concurrency"],
                    }
                )
                return wall

            def fixed() -> float:
                return bench.pytest(
                    plugin, bench.plugin_args(SLEEPY_SCRIPT, f"--scriptum-concurrency={THROTTLE_K}")
                )

            run.measure([("throttled.default", auto), ("throttled.fixed_k", fixed)])
    run.notes["throttled.runs"] = stats
    base = run.med("throttled.fixed_k")
    return [
        f"throttled platform: {cases} cases x {sleep_s} s, the server refuses runs beyond K = {THROTTLE_K} "
        "in flight (RESOURCE_EXHAUSTED, retry hint 1 s)",
        f"  handler time alone at K in flight: {physical:.2f} s",
        _row(f"plugin, --scriptum-concurrency={THROTTLE_K} (the K-limited limit)", base, base),
        _row("plugin, defaults (auto)", run.med("throttled.default"), base, "goal <= 1.3x, no errors"),
        *(
            f"  auto run {i + 1}: {s['runs_throttled']} refused, server max in flight "
            f"{s['server_max_threads_in_flight']}, errors {s['errors']}, client max in flight after the "
            f"first backoff {s['concurrency']['max_reached_after_backoff']} (goal <= {THROTTLE_K + 1}), "
            f"backoffs {s['concurrency']['backoffs']}, limit {s['concurrency']['start']} -> max "
            f"{s['concurrency']['max_limit']} -> final {s['concurrency']['final']}"
            for i, s in enumerate(stats)
        ),
        "",
    ]


# ---- store ------------------------------------------------------------------------------------


def _fill(data: Path, threads: int) -> None:
    """Add ``threads`` settled threads of the benchmark's org straight into the store (one
    transaction): what a long-lived server accumulates."""
    now = int(time.time() * 1000)
    with sqlite3.connect(data / "scriptum.sqlite3") as db:
        db.executemany(
            "INSERT INTO threads (thread_id, org, script, version, requested_version, draft, status,"
            " input_json, load_env, metadata, request_id, created_at, timeout_s, finished_at)"
            " VALUES (?, ?, ?, ?, ?, 0, ?, '{}', 1, ?, ?, ?, 60.0, ?)",
            (
                (
                    f"thr_old{i:010d}",
                    ORG,
                    SLEEPY_SCRIPT,
                    CANDIDATE,
                    CANDIDATE,
                    pb.THREAD_STATUS_COMPLETED,
                    json.dumps({"scriptum.request_id": f"old-{i}"}),
                    f"old-{i}",
                    now - i,
                    now - i,
                )
                for i in range(threads)
            ),
        )


def bench_store(run: Run, cases: int = 500) -> list[str]:
    full, empty = run.root / "store-full", run.root / "store-empty"
    for data in (full, empty):  # initialise (seed) both, kept durable like a long-lived --data store
        with run.server(data, throwaway=False):
            pass
    _fill(full, STORED_THREADS)
    plugin = write_plugin_suite(run.root / "store-plugin", SLEEPY_SCRIPT, cases, 0.0)
    with run.server(full, throwaway=False) as big, run.server(empty, throwaway=False) as small:
        benches = {"full": Bench(run.root, big.addresses), "empty": Bench(run.root, small.addresses)}
        for bench in benches.values():
            _warm(bench)
        run.measure(
            [
                (f"store.{name}", lambda b=bench: b.pytest(plugin, b.plugin_args(SLEEPY_SCRIPT)))
                for name, bench in benches.items()
            ]
        )
    base = run.med("store.empty")
    return [
        f"store: {cases} instant cases at defaults against a durable --data store",
        _row("empty store (the seed only)", base, base),
        _row(f"{STORED_THREADS:,} stored threads", run.med("store.full"), base, "goal <= 1.1x"),
        "",
    ]


# ---- fixed cost -------------------------------------------------------------------------------


def bench_fixed(run: Run) -> list[str]:
    one = write_plugin_suite(run.root / "fixed-one", SLEEPY_SCRIPT, 1, 0.0)
    plain = run.root / "fixed-plain"
    plain.mkdir()
    (plain / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider -q\n")
    (plain / "test_plain.py").write_text(textwrap.dedent("def test_plain():\n    assert True\n"))
    with run.server(run.root / "fixed-data") as server:
        bench = Bench(run.root, server.addresses)
        embedded = [
            "--scriptum-endpoint=embedded",
            f"--scriptum-seed={run.seed}",
            f"--scriptum-script={SLEEPY_SCRIPT}",
            f"--scriptum-version={CANDIDATE}",
        ]
        run.measure(
            [
                ("fixed.embedded", lambda: bench.pytest(one, embedded)),
                ("fixed.remote", lambda: bench.pytest(one, bench.plugin_args(SLEEPY_SCRIPT))),
                ("fixed.plain_plugin", lambda: bench.pytest(plain, [])),
                ("fixed.plain_no_plugin", lambda: bench.pytest(plain, ["-p", "no:scriptum"])),
            ]
        )
    remote, bare = run.med("fixed.remote"), run.med("fixed.plain_no_plugin")
    return [
        "fixed cost: one session of one instant smoke case; one plain test without smoke tests",
        _row("smoke case, remote endpoint (server already up)", remote, remote),
        _row(
            "smoke case, --scriptum-endpoint=embedded",
            run.med("fixed.embedded"),
            remote,
            f"+{run.med('fixed.embedded') - remote:.2f} s (goal <= +0.5 s)",
        ),
        _row("plain test, -p no:scriptum", bare, bare),
        _row(
            "plain test, plugin installed (no smoke test)",
            run.med("fixed.plain_plugin"),
            bare,
            "goal <= 1.15x",
        ),
        "",
    ]


# ---- memory -----------------------------------------------------------------------------------

BIG_SCRIPT = "big"
# Echoes the id with `bytes` of padding: a large output (over 4 MiB it streams, StreamThreadResult).
_BIG = """
def handler(event, context):
    return {"id": event["id"], "pad": "x" * event["bytes"]}
"""


def _peak_rss_mb(bench: Bench, suite: Path, args: list[str]) -> float:
    """Peak resident memory (MB) of one pytest subprocess (its own rusage, from wait4)."""
    cmd = [sys.executable, "-m", "pytest", *args]
    proc = subprocess.Popen(
        cmd, cwd=suite, env=bench.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        stderr = proc.stderr.read() if proc.stderr is not None else ""
        raise RuntimeError(f"{' '.join(cmd)} in {suite} exited {code}:\n{stderr[-2000:]}")
    return usage.ru_maxrss / 1024.0  # KiB on Linux


def _big_suite(root: Path, count: int, pad: int) -> Path:
    suite = write_plugin_suite(root, BIG_SCRIPT, count, 0.0)
    for case_file in (suite / "cases").glob("*.json"):
        case = json.loads(case_file.read_text())
        case["input"]["bytes"] = pad
        case_file.write_text(json.dumps(case))
    return suite


def bench_memory(run: Run, cases: int = 2000) -> list[str]:
    for number in (1, 2):
        vdir = run.seed / "scripts" / BIG_SCRIPT / f"v{number}"
        vdir.mkdir(parents=True, exist_ok=True)
        (vdir / "handler.py").write_text(textwrap.dedent(_BIG).lstrip())
    (run.seed / "scripts" / BIG_SCRIPT / "script.yaml").write_text("active: 2\n")
    many_plugin = write_plugin_suite(run.root / "mem-plugin", SLEEPY_SCRIPT, cases, 0.0)
    many_direct = write_direct_suite(run.root / "mem-direct", SLEEPY_SCRIPT, CANDIDATE, cases, 0.0)
    big = _big_suite(run.root / "mem-big", 10, 5 * 1024 * 1024)
    small = _big_suite(run.root / "mem-small", 10, 10)
    with run.server(run.root / "memory-data") as server:
        bench = Bench(run.root, server.addresses)
        _warm(bench)
        big_args = [*bench.plugin_args(BIG_SCRIPT)]
        run.measure(
            [
                (
                    "memory.many_plugin_mb",
                    lambda: _peak_rss_mb(bench, many_plugin, bench.plugin_args(SLEEPY_SCRIPT)),
                ),
                ("memory.many_direct_mb", lambda: _peak_rss_mb(bench, many_direct, [])),
                ("memory.big_mb", lambda: _peak_rss_mb(bench, big, big_args)),
                ("memory.small_mb", lambda: _peak_rss_mb(bench, small, big_args)),
            ]
        )
    direct, small_mb = run.med("memory.many_direct_mb"), run.med("memory.small_mb")
    return [
        "memory: peak RSS of the pytest process (MB; the 'seconds' column is MB here)",
        _row(f"direct gRPC stub, {cases} instant cases", direct, direct),
        _row(
            f"plugin, {cases} instant cases, defaults",
            run.med("memory.many_plugin_mb"),
            direct,
            "goal <= 1.2x",
        ),
        _row("plugin, 10 cases with a 10 byte output", small_mb, small_mb),
        _row(
            "plugin, 10 cases with a 5 MiB output",
            run.med("memory.big_mb"),
            small_mb,
            f"+{run.med('memory.big_mb') - small_mb:.0f} MB (goal <= +60 MB)",
        ),
        "",
    ]


BENCHES: dict[str, Callable[[Run], list[str]]] = {
    "latency": bench_latency,
    "throttled": bench_throttled,
    "store": bench_store,
    "fixed": bench_fixed,
    "memory": bench_memory,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("which", choices=[*BENCHES, "all"])
    parser.add_argument("--repeat", type=int, default=1, help="measure each variant N times; median")
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    before = machine()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="scriptum-bench18-") as tmp:
        run = Run(Path(tmp), args.repeat)
        for name in BENCHES if args.which == "all" else [args.which]:
            lines += BENCHES[name](run)
    after = machine()
    header = [
        f"machine: nproc={before['nproc']}  cpu={before['cpu']}  python={before['python']}",
        f"load average before: {before['loadavg_1_5_15']}  after: {after['loadavg_1_5_15']}  "
        f"(repeat={args.repeat}; median wall time of a whole pytest subprocess)",
        "",
    ]
    print("\n".join(header + lines))
    if args.json is not None:
        samples = {
            "machine_before": before,
            "machine_after": after,
            "timings": run.timings.samples,
            "notes": run.notes,
            "medians": {k: statistics.median(v) for k, v in run.timings.samples.items()},
        }
        args.json.write_text(json.dumps(samples, indent=2))


if __name__ == "__main__":
    main()
