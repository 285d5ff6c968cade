"""Cost of one HTTP gateway call against one gRPC call to the same in-process DevServer.

Both ask ``HealthCheck`` (no auth, no store work), sequentially on one kept-alive connection, so
the difference is the transport. The gRPC call is the baseline measured in the same run.
Usage: python benchmarks/bench_gateway.py [--calls 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServer


def _ms_per_call(call: Callable[[], object], calls: int) -> float:
    call()  # connect first: the connection is not what is measured
    samples = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        samples.append((time.perf_counter() - start) / calls * 1000.0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = DevServer(data_dir=Path(tmp), principals={"bench-token": "bench"})
        addresses = server.start()
        try:
            with grpc.insecure_channel(addresses.grpc) as channel, httpx.Client() as http:
                stub = pb_grpc.ScriptumServiceStub(channel)
                grpc_ms = _ms_per_call(lambda: stub.HealthCheck(pb.HealthCheckRequest()), args.calls)
                url = f"{addresses.http}/v1/scriptum/health"
                http_ms = _ms_per_call(lambda: http.get(url).raise_for_status(), args.calls)
        finally:
            server.stop(grace=0)
    print(f"HealthCheck over gRPC (baseline): {grpc_ms:7.2f} ms per call   1.00x")
    print(f"HealthCheck over HTTP gateway:    {http_ms:7.2f} ms per call   {http_ms / grpc_ms:.2f}x")


if __name__ == "__main__":
    main()
