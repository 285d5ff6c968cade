"""A real platform for the concurrency tests: a seeded DevServer on loopback whose counters we read.

The inner pytest session (pytester) points at it as a remote endpoint with the token in the
environment, so the outer test can read the server's stats and activation history afterwards.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import grpc

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServer

TOKEN = "speed-token-4f1c9a0e77"
ORG = "speed"
SCRIPT = "svc"
CANDIDATE = 2  # v1 is the known-good rollback target, v2 the (active) candidate
# Far longer than any test should take; only reached when the behaviour under test is broken.
SETTLE_LIMIT_S = 30.0


class Platform:
    """A started DevServer with one script ``svc`` (v1 good, v2 the active candidate)."""

    def __init__(self, server: DevServer) -> None:
        self.server = server
        self.addresses = server.addresses
        self.channel = grpc.insecure_channel(self.addresses.grpc)
        self.stub = pb_grpc.ScriptumServiceStub(self.channel)
        self.admin = pb_grpc.ScriptumDevAdminStub(self.channel)
        self.metadata = (("authorization", f"Bearer {TOKEN}"), ("x-organization-id", ORG))

    def args(self, *extra: str) -> list[str]:
        """CLI args that run an inner pytest session's smoke tests against this server."""
        return [
            f"--scriptum-endpoint={self.addresses.grpc}",
            f"--scriptum-org={ORG}",
            f"--scriptum-script={SCRIPT}",
            f"--scriptum-version={CANDIDATE}",
            "-p",
            "no:cacheprovider",
            *extra,
        ]

    def settled_stats(self) -> pb.Stats:
        """The counters once no run is in flight (a cancelled run is finished server-side asynchronously)."""
        deadline = time.monotonic() + SETTLE_LIMIT_S
        idle = threading.Event()
        while True:
            stats = self.admin.GetStats(pb.GetStatsRequest(), metadata=self.metadata, timeout=10)
            if stats.runs_in_flight == 0 or time.monotonic() > deadline:
                return stats
            idle.wait(0.02)

    def history(self) -> list[pb.Activation]:
        return list(
            self.stub.GetScript(pb.GetScriptRequest(name=SCRIPT), metadata=self.metadata, timeout=10).history
        )

    def thread(self, thread_id: str) -> pb.Thread:
        return self.stub.GetThread(
            pb.GetThreadRequest(thread_id=thread_id), metadata=self.metadata, timeout=10
        )

    def close(self) -> None:
        self.channel.close()
        self.server.stop()


def write_seed(root: Path, versions: Mapping[int, str]) -> Path:
    """A seed with script ``svc`` at the given versions; the highest one is active."""
    (root / "scripts" / SCRIPT).mkdir(parents=True)
    (root / "tenant.env").write_text("DB_HOST=db.speed.invalid\n")
    (root / "scripts" / SCRIPT / "script.yaml").write_text(f"active: {max(versions)}\n")
    for number, source in versions.items():
        vdir = root / "scripts" / SCRIPT / f"v{number}"
        vdir.mkdir()
        (vdir / "handler.py").write_text(textwrap.dedent(source).lstrip())
    return root


def write_cases(directory: Path, events: list[dict[str, object]], expected: list[object]) -> None:
    """One smoke case file per event, ids ``c00``, ``c01``, ... (so collection order is the list order)."""
    directory.mkdir(parents=True)
    for index, (event, output) in enumerate(zip(events, expected, strict=True)):
        case = {"id": f"c{index:02d}", "input": event, "expect": {"output": output, "match": "exact"}}
        (directory / f"c{index:02d}.json").write_text(json.dumps(case))


CASES_TEST = """
import pytest

pytestmark = pytest.mark.scriptum("svc")


@pytest.mark.smoke_cases("cases/*.json")
def test_case(smoke_thread):
    pass
"""


StartPlatform = Callable[[Mapping[int, str]], Platform]
