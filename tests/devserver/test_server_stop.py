"""The server child stops cleanly (issue 18): on stdin EOF and on SIGTERM, after handler runs, with
HTTP keep-alive and gRPC connections still open, it exits 0 — never SIGABRT.

The abort this guards against: a daemon thread blocked in ``sys.stdin.buffer.read`` holds the
buffered reader's lock, and at interpreter shutdown the main thread waits 1 s for that lock, then
aborts ("Fatal Python error: _enter_buffered_busy: could not acquire lock for <stdin>"). The watch
now reads the raw fd. Speed of the stop lives in benchmarks/, not here.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from kit import AUTH, HEADERS, ORG, TOKEN
from kit.constants import CHANNEL_OPTIONS
from kit.seeds import DEVSERVER_SEED as SEED
from kit.transports import GrpcTransport, create, settle

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.devserver import DevServerProcess


def _stop_by_eof(server: DevServerProcess) -> None:
    server.stop()


def _stop_by_sigterm(server: DevServerProcess) -> None:
    server.terminate()  # stdin stays open: the stdin watch is still blocked in its read


@pytest.mark.parametrize("stop", [_stop_by_eof, _stop_by_sigterm], ids=["stdin-eof", "sigterm"])
def test_stop_after_runs_exits_0_not_sigabrt(
    tmp_path: Path, stop: Callable[[DevServerProcess], None]
) -> None:
    server = DevServerProcess(data_dir=tmp_path / "data", seed=SEED, token=TOKEN, org=ORG)
    server.start()
    try:
        with (
            grpc.insecure_channel(server.addresses.grpc, options=CHANNEL_OPTIONS) as channel,
            httpx.Client(base_url=server.addresses.http, headers=HEADERS, timeout=30) as http,
        ):
            t = GrpcTransport(channel, AUTH)
            for text in ("a", "b"):
                assert settle(t, create(t, "echo", 2, {"text": text})).status == pb.THREAD_STATUS_COMPLETED
            # A keep-alive HTTP connection stays open while the server stops.
            assert http.get("/v1/scriptum/scripts/echo").status_code == 200
            stop(server)
        assert server.returncode == 0, (
            f"exit status {server.returncode} (-{int(signal.SIGABRT)} is SIGABRT); stderr:\n"
            f"{server.stderr_tail()}"
        )
        assert "Fatal Python error" not in server.stderr_tail()
        assert "stopping" in server.stderr_tail()
    finally:
        server.kill()


def test_a_data_store_is_durable_across_kill_9_and_a_throwaway_one_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = DevServerProcess(data_dir=data, seed=SEED, token=TOKEN, org=ORG)
    first.start()
    try:
        with grpc.insecure_channel(first.addresses.grpc, options=CHANNEL_OPTIONS) as channel:
            t = GrpcTransport(channel, AUTH)
            t.call("SetEnvVar", pb.SetEnvVarRequest(key="COMMITTED", value="yes"))  # answered = committed
    finally:
        first.kill()
    assert first.returncode == -signal.SIGKILL and "(data: " in first.stderr_tail()
    assert ", durable)" in first.stderr_tail()
    second = DevServerProcess(data_dir=data, seed=SEED, token=TOKEN, org=ORG, throwaway=True)
    second.start()
    try:
        with grpc.insecure_channel(second.addresses.grpc, options=CHANNEL_OPTIONS) as channel:
            t = GrpcTransport(channel, AUTH)
            assert t.call("GetEnvVar", pb.GetEnvVarRequest(key="COMMITTED")).value == "yes"
        assert "throwaway: no fsync per commit" in second.stderr_tail()
    finally:
        second.stop()
    assert second.returncode == 0
