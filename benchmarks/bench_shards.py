"""The sharded CI gate (issue 17): 2,000 cases x 0.2 s platform latency, over 4 shards x
``-n 2`` (``--workers``) against one session, on one DevServerProcess (the platform every shard
of a candidate talks to).

    python benchmarks/bench_shards.py [--cases 2000] [--sleep 0.2] [--shards 4] [--workers 2] [--repeat 1]

A CI matrix runs its shards on separate machines at once, then the merge job: its wall time is the
slowest shard plus the merge. This script measures each shard alone (so a 2-core box does not
pretend to be 4 machines), reports that model, and also all shards started at once on this machine
(the worst case: they share its cores). The one session is the plain gate (``-n 0``, defaults).
Every session runs with ``--scriptum-rollback=off`` / ``defer`` and the merge with ``--rollback
off``: the sleepy candidate passes, nothing to roll back; the measurement is the suite run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_server
from _suites import SLEEPY_SCRIPT, write_plugin_suite, write_seed
from _trivial import HANDLER

from pytest_scriptum.devserver import DevServerProcess

ORG = "bench"
CANDIDATE = 2


def _env(grpc_target: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCRIPTUM_", "PYTEST_"))}
    env.update(DODIL_TOKEN=bench_server.TOKEN, SCRIPTUM_ENDPOINT=grpc_target, SCRIPTUM_ORG_ID=ORG)
    return env


def _args(*extra: str) -> list[str]:
    return [
        sys.executable, "-m", "pytest", f"--scriptum-org={ORG}", f"--scriptum-script={SLEEPY_SCRIPT}",
        f"--scriptum-version={CANDIDATE}", *extra,
    ]


def _timed(cmd: list[str], cwd: Path, env: dict[str, str], expect: int = 0) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != expect:
        tail = done.stdout[-3000:] + done.stderr[-3000:]
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{tail}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--sleep", type=float, default=0.2)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="-n per shard (0: no xdist)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scriptum-bench-shards-") as tmp:
        root = Path(tmp)
        seed = write_seed(root / "seed", HANDLER)
        suite = write_plugin_suite(root / "suite", SLEEPY_SCRIPT, args.cases, args.sleep)
        with DevServerProcess(data_dir=root / "data", seed=seed, token=bench_server.TOKEN, org=ORG) as server:
            server.start()
            env = _env(server.addresses.grpc)
            single: list[float] = []
            slowest: list[float] = []
            together: list[float] = []
            merges: list[float] = []
            for number in range(args.repeat):
                print(f"[{number + 1}/{args.repeat}] one session ...", file=sys.stderr, flush=True)
                single.append(_timed(_args("--scriptum-rollback=off"), suite, env))
                bundles = [root / f"shard-{i}.json" for i in range(1, args.shards + 1)]

                def shard(i: int, total: int = args.shards, workers: int = args.workers) -> list[str]:
                    return _args(
                        f"--scriptum-shard={i}/{total}", "--scriptum-rollback=defer",
                        f"--scriptum-evidence={root / f'shard-{i}.json'}",
                        *(["-n", str(workers)] if workers else []),
                    )

                each = []
                for i in range(1, args.shards + 1):
                    print(f"[{number + 1}/{args.repeat}] shard {i}/{args.shards} alone ...", file=sys.stderr)
                    each.append(_timed(shard(i), suite, env))
                slowest.append(max(each))
                merge = [sys.executable, "-m", "pytest_scriptum._session.merge", "merge", *map(str, bundles),
                         "--rollback", "off"]
                merges.append(_timed(merge, suite, env))
                print(f"[{number + 1}/{args.repeat}] all shards at once ...", file=sys.stderr, flush=True)
                start = time.perf_counter()
                procs = [
                    subprocess.Popen(shard(i), cwd=suite, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
                    for i in range(1, args.shards + 1)
                ]
                codes = [p.wait() for p in procs]
                together.append(time.perf_counter() - start)
                if any(codes):
                    raise SystemExit(f"a shard failed when run together: {codes}")
    one, matrix = statistics.median(single), statistics.median(slowest) + statistics.median(merges)
    here = statistics.median(together) + statistics.median(merges)
    shape = f"{args.shards} shards x -n {args.workers}"
    print(f"{args.cases} cases x {args.sleep} s, {shape}, median of {args.repeat}")
    print(f"  one session (defaults)                            {one:8.2f} s   1.000x")
    print(f"  CI matrix: slowest shard alone + merge            {matrix:8.2f} s   {matrix / one:.3f}x"
          f"   (slowest shard {statistics.median(slowest):.2f} s, merge {statistics.median(merges):.2f} s)")
    print(f"  all shards at once on this machine + merge        {here:8.2f} s   {here / one:.3f}x"
          f"   ({os.cpu_count()} CPUs shared)")


if __name__ == "__main__":
    main()
