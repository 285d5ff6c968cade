"""A real platform for the fault-matrix tests: a seeded DevServer on loopback, driven and inspected
from the outer test while an inner pytest session (pytester) runs a smoke suite against it.

The seed is tiny and written here so every expectation is visible next to the tests:
``calc`` v1 good, v2 bad (active, so a failed gate rolls it back to v1), v3 good (published,
never activated). Every version sleeps ``event["sleep_s"]`` seconds first when asked (the slow
handler option) and reports its version, so a drift or a wrong pin is visible in the output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc

TOKEN = "tok-reliability-3f9a1c5e77b2"
ORG = "rel-org"
OTHER_TOKEN = "tok-reliability-other-8d2e4a"
OTHER_ORG = "rel-other"
SCRIPT = "calc"

_HANDLER = """
import time

VERSION = {version}


def handler(event, context):
    with context.step("compute"):
        if event.get("sleep_s"):
            time.sleep(float(event["sleep_s"]))
        return {{"doubled": event["x"] * 2 + {bias}, "version": VERSION}}
"""


def write_seed(root: Path) -> Path:
    """calc v1 (good), v2 (bad: off by one, active), v3 (good, never activated)."""
    (root / "scripts" / SCRIPT).mkdir(parents=True)
    (root / "tenant.env").write_text("REGION=eu-test\nAPI_KEY=fake-reliability-key-0000\n")
    (root / "scripts" / SCRIPT / "script.yaml").write_text("active: 2\nenv:\n  MODE: smoke\n")
    for version, bias in ((1, 0), (2, 1), (3, 0)):
        vdir = root / "scripts" / SCRIPT / f"v{version}"
        vdir.mkdir()
        (vdir / "handler.py").write_text(_HANDLER.format(version=version, bias=bias))
    return root


def smoke_suite(count: int, *, sleep_s: float = 0.0, marker: str = "") -> str:
    """A test file of ``count`` marker-declared smoke tests that expect the good answer.

    ``marker`` is appended to the module's ``scriptum(...)`` arguments, e.g. ``", timeout=0.5"``.
    """
    sleep = f', "sleep_s": {sleep_s!r}' if sleep_s else ""
    tests = [
        f"""
@pytest.mark.smoke_input({{"x": {i}{sleep}}})
@pytest.mark.smoke_expect({{"doubled": {2 * i}}})
def test_double_{i}():
    pass
"""
        for i in range(count)
    ]
    return f"import pytest\n\npytestmark = pytest.mark.scriptum({SCRIPT!r}{marker})\n" + "".join(tests)


def session_args(grpc_target: str, http_url: str, version: int, *more: str) -> list[str]:
    """CLI args that point an inner pytest session at a platform and pin ``version``."""
    return [
        f"--scriptum-endpoint={grpc_target}",
        f"--scriptum-http-url={http_url}",
        f"--scriptum-org={ORG}",
        f"--scriptum-script={SCRIPT}",
        f"--scriptum-version={version}",
        "-p",
        "no:cacheprovider",
        "-rfE",
        *more,
    ]


class Platform:
    """Admin and read access to a running server over its real gRPC port."""

    def __init__(self, grpc_target: str, http_url: str) -> None:
        self.grpc = grpc_target
        self.http = http_url
        self._channel = grpc.insecure_channel(grpc_target)
        self.stub = pb_grpc.ScriptumServiceStub(self._channel)
        self.admin = pb_grpc.ScriptumDevAdminStub(self._channel)
        self.metadata = (("authorization", f"Bearer {TOKEN}"), ("x-organization-id", ORG))

    def args(self, version: int, *more: str) -> list[str]:
        """Inner-session args for this platform."""
        return session_args(self.grpc, self.http, version, *more)

    def set_faults(self, **fields: Any) -> None:
        self.admin.SetFaults(pb.Faults(**fields), metadata=self.metadata, timeout=10)

    def reset(self) -> None:
        """Faults off, counters zeroed."""
        self.set_faults()
        self.admin.ResetStats(pb.ResetStatsRequest(), metadata=self.metadata, timeout=10)

    def stats(self) -> pb.Stats:
        return self.admin.GetStats(pb.GetStatsRequest(), metadata=self.metadata, timeout=10)

    def script(self) -> pb.Script:
        return self.stub.GetScript(pb.GetScriptRequest(name=SCRIPT), metadata=self.metadata, timeout=10)

    def rollbacks_in_history(self) -> list[pb.Activation]:
        return [entry for entry in self.script().history if entry.kind == pb.ROLLBACK]

    def close(self) -> None:
        self._channel.close()
