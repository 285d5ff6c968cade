"""Every pytest-scriptum benchmark in one command; prints a table of ratios measured in this run.

    python benchmarks/run_all.py [--repeat N] [--json results.json]

One DevServerProcess (the embedded server as a child process) serves every benchmark, so its
start-up is not measured. Each suite is a real ``pytest`` subprocess pointed at it as a remote
endpoint with the token in ``DODIL_TOKEN``; its wall time is the measurement. With ``--repeat N``
every measurement is taken N times (interleaved) and the median is used. See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bench_server
import grpc
from _suites import (
    FAIL_FAST_SCRIPT,
    SLEEPY_SCRIPT,
    write_direct_suite,
    write_plugin_suite,
    write_seed,
)
from _trivial import HANDLER

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServerProcess, ServerAddresses

ORG = "bench"
CANDIDATE = 2  # every seeded script with a rollback target has v1 (good) and v2 (candidate, active)

# Records the failing test's thread id and the moment the rollback hook fired (benchmark (c)).
FAIL_FAST_CONFTEST = """
import json
import os
import time


def _record(**fields):
    with open(os.environ["BENCH_FAIL_FAST_OUT"], "a") as out:
        out.write(json.dumps(fields) + "\\n")


def pytest_runtest_logreport(report):
    if report.failed and report.when == "call":
        props = dict(report.user_properties)
        _record(event="failed", thread_id=props.get("scriptum.thread_id"), at=time.time())


def pytest_scriptum_after_rollback(result):
    _record(event="after_rollback", status=result.status, at=time.time())
"""


@dataclass
class Timings:
    """Wall times (seconds) per measured variant, across repeats."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.samples.setdefault(name, []).append(seconds)

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])


class Bench:
    """The shared server, the subprocess environment and the generated suites."""

    def __init__(self, root: Path, addresses: ServerAddresses, profile_dir: Path | None = None) -> None:
        self.root = root
        self.profile_dir = profile_dir
        self.runs = 0
        self.addresses = addresses
        # PYTHONDONTWRITEBYTECODE dropped: with it, every module changed since its last .pyc is
        # compiled again in every measured process (pytest's rewritten plugin modules included),
        # which is not what a user's sessions pay after their first.
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SCRIPTUM_", "PYTEST_")) and k != "PYTHONDONTWRITEBYTECODE"
        }
        self.env.update(DODIL_TOKEN=bench_server.TOKEN, SCRIPTUM_ENDPOINT=addresses.grpc, SCRIPTUM_ORG_ID=ORG)
        self.metadata = (("authorization", f"Bearer {bench_server.TOKEN}"), ("x-organization-id", ORG))

    def plugin_args(self, script: str, *extra: str) -> list[str]:
        return [
            f"--scriptum-endpoint={self.addresses.grpc}",
            f"--scriptum-org={ORG}",
            f"--scriptum-script={script}",
            f"--scriptum-version={CANDIDATE}",
            *extra,
        ]

    def pytest(
        self,
        suite: Path,
        args: Sequence[str],
        *,
        expect_code: int = 0,
        extra_env: dict[str, str] | None = None,
    ) -> float:
        """Run pytest in ``suite``; return its wall time; fail loudly on an unexpected exit code."""
        self.runs += 1
        cmd = [sys.executable, "-m", "pytest", *args]
        if self.profile_dir is not None:  # cProfile of the whole pytest process (it adds overhead)
            out = self.profile_dir / f"{self.runs:02d}-{suite.name}.prof"
            cmd = [sys.executable, "-m", "cProfile", "-o", str(out), *cmd[1:]]
        env = {**self.env, **(extra_env or {})}
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=suite, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        # Under cProfile the exit code is lost (python -m cProfile exits 0), so it is not checked.
        if done.returncode != expect_code and self.profile_dir is None:
            raise RuntimeError(
                f"{' '.join(cmd)} in {suite} exited {done.returncode}, expected {expect_code}:\n"
                f"{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
            )
        return elapsed


def bench_latency(bench: Bench, timings: Timings, cases: int, sleep_s: float) -> None:
    """(a) ``cases`` cases of ``sleep_s`` handler latency: plugin variants vs the direct-stub file."""
    plugin = bench.root / "a-plugin"
    direct = bench.root / "a-direct"
    if not plugin.exists():
        write_plugin_suite(plugin, SLEEPY_SCRIPT, cases, sleep_s)
        write_direct_suite(direct, SLEEPY_SCRIPT, CANDIDATE, cases, sleep_s)
    timings.add("a.plugin_default", bench.pytest(plugin, bench.plugin_args(SLEEPY_SCRIPT)))
    timings.add(
        "a.plugin_c50",
        bench.pytest(plugin, bench.plugin_args(SLEEPY_SCRIPT, f"--scriptum-concurrency={cases}")),
    )
    timings.add(
        "a.plugin_c1", bench.pytest(plugin, bench.plugin_args(SLEEPY_SCRIPT, "--scriptum-concurrency=1"))
    )
    timings.add(
        "a.xdist8_c1",
        bench.pytest(plugin, bench.plugin_args(SLEEPY_SCRIPT, "--scriptum-concurrency=1", "-n", "8")),
    )
    timings.add("a.direct", bench.pytest(direct, []))


def bench_overhead(bench: Bench, timings: Timings, cases: int) -> None:
    """(b) ``cases`` instant cases: plugin with concurrency 1 vs the direct-stub file."""
    plugin = bench.root / "b-plugin"
    direct = bench.root / "b-direct"
    if not plugin.exists():
        write_plugin_suite(plugin, SLEEPY_SCRIPT, cases, 0.0)
        write_direct_suite(direct, SLEEPY_SCRIPT, CANDIDATE, cases, 0.0)
    timings.add(
        "b.plugin_c1", bench.pytest(plugin, bench.plugin_args(SLEEPY_SCRIPT, "--scriptum-concurrency=1"))
    )
    timings.add("b.direct", bench.pytest(direct, []))


def bench_fail_fast(
    bench: Bench, stub: pb_grpc.ScriptumServiceStub, cases: int, sleep_s: float
) -> dict[str, float]:
    """(c) fail-fast: seconds from the failing result to the applied rollback (server clock and hooks)."""
    suite = write_plugin_suite(bench.root / "c-plugin", FAIL_FAST_SCRIPT, cases, sleep_s, FAIL_FAST_CONFTEST)
    out = bench.root / "c-records.jsonl"
    wall = bench.pytest(
        suite,
        bench.plugin_args(FAIL_FAST_SCRIPT, "--scriptum-fail-fast", "--scriptum-incident=BENCH-1"),
        expect_code=1,  # gate failed, rolled back and verified
        extra_env={"BENCH_FAIL_FAST_OUT": str(out)},
    )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    failed = [r for r in records if r["event"] == "failed"]
    rolled = [r for r in records if r["event"] == "after_rollback"]
    if len(failed) != 1 or len(rolled) != 1 or rolled[0]["status"] != "rolled_back_verified":
        raise RuntimeError(f"fail-fast run did not fail one case and roll back once: {records}")
    thread = stub.GetThread(pb.GetThreadRequest(thread_id=failed[0]["thread_id"]), metadata=bench.metadata)
    # The activation history (an EXTENSION of GetScript) holds the rollback with its server time.
    script = stub.GetScript(pb.GetScriptRequest(name=FAIL_FAST_SCRIPT), metadata=bench.metadata)
    rollback = script.activation_history[-1]
    if rollback.kind != pb.ACTIVATION_KIND_ROLLBACK or rollback.version != 1:
        raise RuntimeError(f"last activation is not the rollback to v1: {rollback}")
    stats = bench_admin_stats(bench)
    return {
        "server_result_to_rollback_s": (rollback.at_ms - thread.finished_at_ms) / 1000.0,
        "hook_failed_report_to_after_rollback_s": rolled[0]["at"] - failed[0]["at"],
        "wall_s": wall,
        "runs_cancelled": float(stats.runs_cancelled),
    }


def bench_admin_stats(bench: Bench) -> pb.Stats:
    with grpc.insecure_channel(bench.addresses.grpc) as channel:
        admin = pb_grpc.ScriptumDevAdminStub(channel)
        return admin.GetStats(pb.GetStatsRequest(), metadata=bench.metadata)


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_1_5_15": load,
    }


def _row(label: str, seconds: float, base: float, note: str = "") -> str:
    return f"  {label:<48} {seconds:>8.2f} s {seconds / base:>8.3f}x  {note}"


def report(
    timings: Timings,
    fail_fast: list[dict[str, float]],
    rates: dict[int, list[float]],
    args: argparse.Namespace,
    before: dict[str, str],
    after: dict[str, str],
) -> str:
    med = timings.median
    a_direct = med("a.direct")
    lines = [
        f"machine: nproc={before['nproc']}  cpu={before['cpu']}  python={before['python']}",
        f"load average before: {before['loadavg_1_5_15']}  after: {after['loadavg_1_5_15']}  "
        f"(repeats={args.repeat}, median wall time of a whole pytest subprocess)",
        "",
        f"(a) {args.a_cases} cases x {args.a_sleep} s handler latency (ratio to the serial direct-stub file)",
        _row("direct gRPC stub, serial (baseline)", a_direct, a_direct),
        _row("plugin, defaults (auto)", med("a.plugin_default"), a_direct, "goal <= 0.100x, < xdist"),
        _row(f"plugin, --scriptum-concurrency={args.a_cases}", med("a.plugin_c50"), a_direct),
        _row("plugin, --scriptum-concurrency=1", med("a.plugin_c1"), a_direct),
        _row("plugin, xdist -n 8, --scriptum-concurrency=1", med("a.xdist8_c1"), a_direct),
        f"  plugin default vs xdist -n 8: {med('a.plugin_default') / med('a.xdist8_c1'):.3f}x "
        "(< 1 means the plugin is faster)",
        "",
        f"(b) {args.b_cases} instant cases  (ratio to the direct-stub file)",
        _row("direct gRPC stub, serial (baseline)", med("b.direct"), med("b.direct")),
        _row("plugin, --scriptum-concurrency=1", med("b.plugin_c1"), med("b.direct"), "goal <= 1.25x"),
        f"  per-test cost: direct {med('b.direct') / args.b_cases * 1000:.2f} ms, "
        f"plugin {med('b.plugin_c1') / args.b_cases * 1000:.2f} ms",
        "",
        f"(c) --scriptum-fail-fast, {args.c_cases} cases x {args.c_sleep} s, the first result fails",
    ]
    for i, ff in enumerate(fail_fast):
        lines.append(
            f"  run {i + 1}: failing thread finished -> rollback applied (server clock) "
            f"{ff['server_result_to_rollback_s']:.3f} s  (goal <= 3 s); failed report -> after_rollback "
            f"hook {ff['hook_failed_report_to_after_rollback_s']:.3f} s; whole run {ff['wall_s']:.2f} s"
        )
    lines += [
        "",
        "(d) embedded server (DevServerProcess), trivial runs/s over gRPC: CreateThread + WatchThread"
        " + GetThreadResult (bench_server.py)",
    ]
    for threads, samples in rates.items():
        lines.append(
            f"  {threads:>2} client threads: {statistics.median(samples):>7.0f} runs/s  (goal >= 200; "
            f"samples {', '.join(f'{rate:.0f}' for rate in samples)})"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=1, help="measure (a), (b), (d) this many times; median")
    parser.add_argument("--a-cases", type=int, default=50)
    parser.add_argument("--a-sleep", type=float, default=0.5)
    parser.add_argument("--b-cases", type=int, default=500)
    parser.add_argument("--c-cases", type=int, default=50)
    parser.add_argument("--c-sleep", type=float, default=2.0)
    parser.add_argument("--d-runs", type=int, default=600)
    parser.add_argument("--d-threads", default="1,8")
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    parser.add_argument("--profile", type=Path, help="write a cProfile file per pytest run into this dir")
    parser.add_argument("--only", default="abcd", help="subset of benchmarks to run, e.g. 'ab'")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")

    before = machine()
    timings = Timings()
    fail_fast: list[dict[str, float]] = []
    rates: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="scriptum-bench-") as tmp:
        root = Path(tmp)
        seed = write_seed(root / "seed", HANDLER)
        server = DevServerProcess(data_dir=root / "data", seed=seed, token=bench_server.TOKEN, org=ORG)
        with server:
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
            bench = Bench(root, server.addresses, args.profile)
            with grpc.insecure_channel(server.addresses.grpc) as channel:
                stub = pb_grpc.ScriptumServiceStub(channel)
                # Grow the server's handler worker pool once, so no measurement pays for it.
                bench_server.bench_server(stub, 2 * args.a_cases, args.a_cases)
                steps: list[tuple[str, Callable[[], None]]] = [
                    ("a", lambda: bench_latency(bench, timings, args.a_cases, args.a_sleep)),
                    ("b", lambda: bench_overhead(bench, timings, args.b_cases)),
                ]
                for number in range(args.repeat):
                    for name, step in steps:
                        if name in args.only:
                            print(f"[{number + 1}/{args.repeat}] ({name}) ...", file=sys.stderr, flush=True)
                            step()
                if "c" in args.only:
                    print("(c) ...", file=sys.stderr, flush=True)
                    # One rollback per seeded script: the fail-fast run is measured once per server.
                    fail_fast.append(bench_fail_fast(bench, stub, args.c_cases, args.c_sleep))
                if "d" in args.only:
                    print("(d) ...", file=sys.stderr, flush=True)
                    bench_server.bench_server(stub, 50, 4)  # warm the worker pool and the channel
                    for _ in range(args.repeat):
                        for threads in (int(n) for n in args.d_threads.split(",")):
                            rates.setdefault(threads, []).append(
                                bench_server.bench_server(stub, args.d_runs, threads)
                            )
    after = machine()
    if args.only == "abcd":
        print(report(timings, fail_fast, rates, args, before, after))
    else:
        print(json.dumps({"timings": timings.samples, "fail_fast": fail_fast, "rates": rates}, indent=2))
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "machine_before": before,
                    "machine_after": after,
                    "timings": timings.samples,
                    "fail_fast": fail_fast,
                    "runs_per_s": rates,
                    "args": {k: str(v) for k, v in vars(args).items()},
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
