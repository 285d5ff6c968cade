"""Trivial thread runs per second through gRPC against an in-process DevServer.

One run is what a client of the documented API does: ``CreateThread`` (pinned, ``input_json``),
the ``WatchThread`` stream until the thread is terminal, then ``GetThreadResult``, checking the
status and the output. Compares with a naive baseline measured in the same run: a fresh
`python -c` subprocess per run.
Usage: python benchmarks/bench_server.py [--runs 600] [--threads 1,8,32]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import grpc
from _trivial import HANDLER, bench_baseline, runs_per_second, thread_counts

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServer

TOKEN = "bench-token"
Metadata = tuple[tuple[str, str], ...]
AUTH: Metadata = (("authorization", f"Bearer {TOKEN}"), ("x-organization-id", "bench"))


def _seed(root: Path) -> Path:
    version = root / "seed" / "scripts" / "trivial" / "v1"
    version.mkdir(parents=True)
    (version / "handler.py").write_text(HANDLER)
    return root / "seed"


def run_once(stub: pb_grpc.ScriptumServiceStub, metadata: Metadata, n: int) -> None:
    """One trivial run on ``trivial`` v1 followed to its result; raises if it is not ``{"n": n + 1}``."""
    created = stub.CreateThread(
        pb.CreateThreadRequest(script_name="trivial", version=1, input_json=f'{{"n": {n}}}'),
        metadata=metadata,
        timeout=60,
    )
    thread = None
    # The stream ends after the event whose thread is terminal (or paused).
    for event in stub.WatchThread(
        pb.WatchThreadRequest(thread_id=created.thread_id), metadata=metadata, timeout=60
    ):
        thread = event.thread
    if thread is None:
        raise RuntimeError(f"run {n}: WatchThread ended without an event")
    if thread.status != pb.THREAD_STATUS_COMPLETED:
        status = pb.ThreadStatus.Name(thread.status)
        raise RuntimeError(f"run {n} ended {status}: {thread.error_code} {thread.error}")
    request = pb.GetThreadResultRequest(thread_id=created.thread_id, output_only=True)
    result = stub.GetThreadResult(request, metadata=metadata, timeout=60)
    if json.loads(result.output_data) != {"n": n + 1}:
        raise RuntimeError(f"run {n} answered {result.output_data!r}")


def bench_server(stub: pb_grpc.ScriptumServiceStub, runs: int, threads: int) -> float:
    """Runs per second of ``run_once`` from ``threads`` client threads."""
    return runs_per_second(lambda i: run_once(stub, AUTH, i), runs, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--threads", type=thread_counts, default="1,8,32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with DevServer(data_dir=root / "data", seed=_seed(root), principals={TOKEN: "bench"}) as server:
            with grpc.insecure_channel(server.addresses.grpc) as channel:
                stub = pb_grpc.ScriptumServiceStub(channel)
                bench_server(stub, 20, 4)  # warm up workers and the channel
                rows = []
                for threads in args.threads:
                    server_rate = bench_server(stub, args.runs, threads)
                    baseline_rate = bench_baseline(max(20, args.runs // 10), threads)
                    rows.append((threads, server_rate, baseline_rate))
    print(f"{'client threads':>14} | {'DevServer runs/s':>16} | {'subprocess runs/s':>17} | {'ratio':>6}")
    print(f"{'-' * 14}-+-{'-' * 16}-+-{'-' * 17}-+-{'-' * 6}")
    for threads, server_rate, baseline_rate in rows:
        ratio = server_rate / baseline_rate
        print(f"{threads:>14} | {server_rate:>16.0f} | {baseline_rate:>17.0f} | {ratio:>5.1f}x")


if __name__ == "__main__":
    main()
