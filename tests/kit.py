"""A real platform for pytester sessions: a DevServer on loopback whose state the outer test reads.

``--scriptum-endpoint=embedded`` throws its server away with the session; tests that must read
the server's state afterwards (active version, history, counters) start one here and point the
inner session at it as a remote endpoint, with the token in the environment.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
import yaml

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServer

TOKEN = "tok-kit-5b1e0c77d2"
ORG = "kit-org"


def write_seed(
    root: Path, scripts: Mapping[str, Mapping[str, Any]], tenant_env: Mapping[str, str] | None = None
) -> Path:
    """Write a seed dir: ``scripts = {name: {"active": N, "env": {...}, "versions": {N: source}}}``."""
    root.mkdir(parents=True, exist_ok=True)
    env = tenant_env or {"DB_HOST": "db.kit.invalid"}
    (root / "tenant.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    for name, spec in scripts.items():
        base = root / "scripts" / name
        base.mkdir(parents=True, exist_ok=True)
        meta = {k: spec[k] for k in ("active", "env") if k in spec}
        if meta:
            (base / "script.yaml").write_text(yaml.safe_dump(meta))
        for version, source in spec["versions"].items():
            vdir = base / f"v{version}"
            vdir.mkdir(exist_ok=True)
            (vdir / "handler.py").write_text(textwrap.dedent(source))
    return root


class Platform:
    """A started DevServer plus what an outer test needs to drive and inspect it."""

    def __init__(self, server: DevServer) -> None:
        self.server = server
        self.addresses = server.addresses
        self.channel = grpc.insecure_channel(self.addresses.grpc)
        self.stub = pb_grpc.ScriptumServiceStub(self.channel)
        self.admin = pb_grpc.ScriptumDevAdminStub(self.channel)
        self.metadata = (("authorization", f"Bearer {TOKEN}"), ("x-organization-id", ORG))

    @property
    def args(self) -> list[str]:
        """CLI args that point an inner pytest session at this server."""
        return [
            f"--scriptum-endpoint={self.addresses.grpc}",
            f"--scriptum-http-url={self.addresses.http}",
            f"--scriptum-org={ORG}",
            "-p",
            "no:cacheprovider",
        ]

    def script(self, name: str) -> pb.Script:
        return self.stub.GetScript(pb.GetScriptRequest(name=name), metadata=self.metadata, timeout=10)

    def active(self, name: str) -> int:
        return self.script(name).active_version

    def stats(self) -> pb.Stats:
        return self.admin.GetStats(pb.GetStatsRequest(), metadata=self.metadata, timeout=10)

    def calls(self, method: str) -> int:
        return self.stats().calls.get(method, 0)

    def set_faults(self, **fields: Any) -> None:
        self.admin.SetFaults(pb.Faults(**fields), metadata=self.metadata, timeout=10)

    def close(self) -> None:
        self.channel.close()
        self.server.stop()
