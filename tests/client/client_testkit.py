"""Shared constants and helpers of the client tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import grpc

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.client._base import ClientBase

SEED = Path(__file__).parent / "seed"
TOKEN = "tok-client-acme-6c1f0b2e"
ORG = "acme"
OTHER_TOKEN = "tok-client-globex-93d7a4"
OTHER_ORG = "globex"
AUTH = (("authorization", f"Bearer {TOKEN}"), ("x-organization-id", ORG))
TRANSPORTS = ["grpc", "http"]


class Admin:
    """The dev server's fault injection and counters (ScriptumDevAdmin over gRPC)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = pb_grpc.ScriptumDevAdminStub(channel)

    def set_faults(self, **fields: object) -> None:
        self._stub.SetFaults(pb.Faults(**fields), metadata=AUTH, timeout=10)  # type: ignore[arg-type]

    def stats(self) -> pb.Stats:
        return self._stub.GetStats(pb.GetStatsRequest(), metadata=AUTH, timeout=10)

    def reset(self) -> None:
        self.set_faults()
        self._stub.ResetStats(pb.ResetStatsRequest(), metadata=AUTH, timeout=10)

    def calls(self, method: str) -> int:
        return self.stats().calls.get(method, 0)

    def wait_for(self, predicate: Callable[[pb.Stats], bool], what: str, timeout_s: float = 15.0) -> pb.Stats:
        """Wait until the server's counters satisfy ``predicate`` (a condition, not a fixed sleep)."""
        ticker = threading.Event()
        for _ in range(int(timeout_s / 0.02)):
            stats = self.stats()
            if predicate(stats):
                return stats
            ticker.wait(0.02)
        raise AssertionError(f"server never reached: {what}; last stats: {self.stats()}")


ClientFactory = Callable[..., ClientBase]
