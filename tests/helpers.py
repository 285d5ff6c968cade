"""Shared helpers of the plugin's pytester tests: a seed builder, readers of inner-session output,
and ``Platform``, which drives and reads a dev server over its real gRPC port with the generated
stubs of the documented API (GetScript, ListScriptVersions, GetThread, CreateThread,
RollbackScript) and the dev server's own ScriptumDevAdmin (counters, fault injection).

Inner pytest sessions start their own embedded server from a seed written here, so every test
directory is a self-contained smoke suite exactly as a user would lay it out.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import yaml

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc

if TYPE_CHECKING:  # only annotations: importing helpers must not need the dev server
    from pytest_scriptum.devserver import DevServer

__all__ = [
    "ENV_VARS",
    "EXAMPLE_SUITE",
    "SHOP",
    "SHOP_SECRETS",
    "Platform",
    "auth",
    "copy_example_suite",
    "outcomes",
    "write_seed",
    "write_shop_seed",
    "write_smoke_ini",
]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_SUITE = REPO / "example_suites" / "invoice_parser"

# Environment variables the plugin reads: an outer environment must not leak into inner sessions
# (tests/conftest.py deletes them before every test).
ENV_VARS = (
    "SCRIPTUM_VERSION",
    "SCRIPTUM_SCRIPT",
    "SCRIPTUM_ENDPOINT",
    "SCRIPTUM_API_ENDPOINT",
    "SCRIPTUM_HTTP_URL",
    "SCRIPTUM_ORG_ID",
    "SCRIPTUM_ORG_NAME",
    "SCRIPTUM_INCIDENT",
    "DODIL_TOKEN",
    "SCRIPTUM_TOKEN",
)

# "PASSED path::test", "FAILED path::test - message", "ERROR path::test - message" (from -rA).
_SUMMARY_LINE = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)")


def auth(token: str, org: str) -> tuple[tuple[str, str], ...]:
    """gRPC metadata that authenticates as ``token`` in organization ``org``."""
    return (("authorization", f"Bearer {token}"), ("x-organization-id", org))


class Platform:
    """A running dev server, driven and read by the outer test over its real gRPC port.

    Build it from addresses (``Platform(grpc, http, token=..., org=...)``) when someone else owns
    the server, or with ``Platform.of(server, ...)`` to own a started DevServer: ``close()`` then
    stops it too. ``script`` and ``version`` are defaults of ``args()`` and of the script readers;
    ``session_args`` are appended to every inner session's args (before the call's own).
    """

    def __init__(
        self,
        grpc_target: str,
        http_url: str,
        *,
        token: str,
        org: str,
        script: str | None = None,
        version: int | None = None,
        session_args: tuple[str, ...] = (),
        server: DevServer | None = None,
    ) -> None:
        self.grpc = grpc_target
        self.http = http_url
        self.org = org
        self.script_name = script
        self.version = version
        self.session_args = session_args
        self.server = server
        self.channel = grpc.insecure_channel(grpc_target)
        self.stub = pb_grpc.ScriptumServiceStub(self.channel)
        self.admin = pb_grpc.ScriptumDevAdminStub(self.channel)
        self.metadata = auth(token, org)

    @classmethod
    def of(cls, server: DevServer, **options: Any) -> Platform:
        """The platform of a started ``server``, which ``close()`` stops."""
        return cls(server.addresses.grpc, server.addresses.http, server=server, **options)

    def args(self, *extra: str, version: int | None = None) -> list[str]:
        """CLI args that point an inner pytest session at this server (pinning ``version``, if any)."""
        version = self.version if version is None else version
        return [
            f"--scriptum-endpoint={self.grpc}",
            f"--scriptum-http-url={self.http}",
            f"--scriptum-org={self.org}",
            *([f"--scriptum-script={self.script_name}"] if self.script_name is not None else []),
            *([f"--scriptum-version={version}"] if version is not None else []),
            "-p",
            "no:cacheprovider",
            *self.session_args,
            *extra,
        ]

    # -- reads (the documented API, over the generated stubs) ----------------------------------

    def _name(self, name: str | None) -> str:
        name = self.script_name if name is None else name
        assert name is not None, "no script name given and this platform has no default script"
        return name

    def script(self, name: str | None = None) -> pb.Script:
        """GetScript."""
        return self.stub.GetScript(
            pb.GetScriptRequest(name=self._name(name)), metadata=self.metadata, timeout=10
        )

    def active(self, name: str | None = None) -> int:
        return self.script(name).active_version

    def history(self, name: str | None = None) -> list[pb.Activation]:
        """The script's activation history (EXTENSION), oldest first."""
        return list(self.script(name).activation_history)

    def rollbacks_in_history(self, name: str | None = None) -> list[pb.Activation]:
        return [entry for entry in self.history(name) if entry.kind == pb.ACTIVATION_KIND_ROLLBACK]

    def versions(self, name: str | None = None) -> list[pb.ScriptVersion]:
        """ListScriptVersions, ascending."""
        return list(
            self.stub.ListScriptVersions(
                pb.ListScriptVersionsRequest(name=self._name(name)), metadata=self.metadata, timeout=10
            ).versions
        )

    def thread(self, thread_id: str) -> pb.Thread:
        """GetThread."""
        return self.stub.GetThread(
            pb.GetThreadRequest(thread_id=thread_id), metadata=self.metadata, timeout=10
        )

    def result(self, thread_id: str, **fields: Any) -> pb.GetThreadResultResponse:
        """GetThreadResult (``fields``: step_path, output_only, metadata_only)."""
        return self.stub.GetThreadResult(
            pb.GetThreadResultRequest(thread_id=thread_id, **fields), metadata=self.metadata, timeout=10
        )

    # -- writes --------------------------------------------------------------------------------

    def rollback(
        self, to_version: int, name: str | None = None, **extensions: Any
    ) -> pb.RollbackScriptResponse:
        """RollbackScript to ``to_version`` (an operator's rollback); ``extensions`` are the
        request's EXTENSION fields (expected_active_version, reason, incident_id, rollback_id)."""
        return self.stub.RollbackScript(
            pb.RollbackScriptRequest(name=self._name(name), to_version=to_version, **extensions),
            metadata=self.metadata,
            timeout=10,
        )

    def create_thread(
        self, input: Any, *, version: int | None = None, name: str | None = None, **fields: Any
    ) -> str:
        """CreateThread pinned to ``version`` (default: this platform's) with ``input`` as JSON;
        returns the thread id at once (the thread runs asynchronously)."""
        version = self.version if version is None else version
        assert version is not None, "no version given and this platform has no default version"
        return self.stub.CreateThread(
            pb.CreateThreadRequest(
                script_name=self._name(name), version=version, input_json=json.dumps(input), **fields
            ),
            metadata=self.metadata,
            timeout=10,
        ).thread_id

    def run(
        self,
        name: str | None,
        version: int | None,
        input: Any,
        *,
        load_env: bool = True,
        timeout: str = "60s",
        watch_timeout_s: float = 120.0,
    ) -> tuple[pb.Thread, pb.GetThreadResultResponse]:
        """A whole run, as a client of the documented API does it: CreateThread pinned to
        ``version``, WatchThread until the stream ends (the thread is terminal or PAUSED), then
        GetThreadResult. Returns the last thread the stream reported and the result."""
        thread_id = self.create_thread(input, version=version, name=name, load_env=load_env, timeout=timeout)
        last: pb.Thread | None = None
        for event in self.stub.WatchThread(
            pb.WatchThreadRequest(thread_id=thread_id), metadata=self.metadata, timeout=watch_timeout_s
        ):
            last = event.thread
        assert last is not None, f"WatchThread of {thread_id} ended without an event"
        return last, self.result(thread_id)

    # -- the dev server's admin API: counters and fault injection -------------------------------

    def stats(self) -> pb.Stats:
        return self.admin.GetStats(pb.GetStatsRequest(), metadata=self.metadata, timeout=10)

    def calls(self, method: str) -> int:
        return self.stats().calls.get(method, 0)

    def settled_stats(self, limit_s: float = 30.0) -> pb.Stats:
        """The counters once no run is in flight (a cancelled run is finished server-side asynchronously).

        After ``limit_s`` (far longer than any test should take) the counters are returned as they
        are, for the test's own assertions to fail on.
        """
        return self._poll(lambda stats: stats.runs_in_flight == 0, limit_s)[0]

    def wait_for(self, predicate: Callable[[pb.Stats], bool], what: str, timeout_s: float = 15.0) -> pb.Stats:
        """Wait until the server's counters satisfy ``predicate`` (a condition, not a fixed sleep)."""
        stats, reached = self._poll(predicate, timeout_s)
        if not reached:
            raise AssertionError(f"server never reached: {what}; last stats: {stats}")
        return stats

    def _poll(self, predicate: Callable[[pb.Stats], bool], timeout_s: float) -> tuple[pb.Stats, bool]:
        """Read the counters every 20 ms until ``predicate`` holds or ``timeout_s`` has passed."""
        deadline = time.monotonic() + timeout_s
        ticker = threading.Event()
        while True:
            stats = self.stats()
            if predicate(stats):
                return stats, True
            if time.monotonic() > deadline:
                return stats, False
            ticker.wait(0.02)

    def set_faults(self, **fields: Any) -> None:
        self.admin.SetFaults(pb.Faults(**fields), metadata=self.metadata, timeout=10)

    def reset(self) -> None:
        """Faults off, counters zeroed."""
        self.set_faults()
        self.admin.ResetStats(pb.ResetStatsRequest(), metadata=self.metadata, timeout=10)

    def close(self) -> None:
        """Close the channel, and stop the server if this platform owns it."""
        self.channel.close()
        if self.server is not None:
            self.server.stop()


def write_seed(
    root: Path,
    *,
    script: str,
    versions: Mapping[int, str],
    active: int | None = None,
    overlay: Mapping[str, str] | None = None,
    tenant_env: Mapping[str, str] | None = None,
    contracts: Mapping[int, str] | None = None,
) -> Path:
    """Write a seed directory (DESIGN.md section 5) for one script and return ``root``.

    ``versions`` maps N to the source of ``vN/handler.py``; ``contracts`` maps N to the text of
    ``vN/contract.scriptum`` (the version's declarations; versions without one declare nothing).
    """
    root.mkdir(parents=True, exist_ok=True)
    env = dict(tenant_env or {})
    (root / "tenant.env").write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    base = root / "scripts" / script
    base.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {}
    if active is not None:
        meta["active"] = active
    if overlay:
        meta["env"] = dict(overlay)
    if meta:
        (base / "script.yaml").write_text(yaml.safe_dump(meta))
    for number, source in versions.items():
        vdir = base / f"v{number}"
        vdir.mkdir(exist_ok=True)
        (vdir / "handler.py").write_text(textwrap.dedent(source))
        contract = (contracts or {}).get(number)
        if contract is not None:
            (vdir / "contract.scriptum").write_text(textwrap.dedent(contract))
    return root


def write_smoke_ini(pytester: pytest.Pytester, *, script: str, seed: str = "seed", **extra: str) -> None:
    """A pytest.ini that runs the directory's smoke tests against an embedded server."""
    lines = [
        "[pytest]",
        "scriptum_endpoint = embedded",
        f"scriptum_seed = {seed}",
        f"scriptum_script = {script}",
    ]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    (pytester.path / "pytest.ini").write_text("\n".join(lines) + "\n")


def copy_example_suite(pytester: pytest.Pytester) -> Path:
    """Copy the invoice-parser example suite (without old evidence) into the pytester directory."""
    shutil.copytree(
        EXAMPLE_SUITE,
        pytester.path,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("evidence", "__pycache__", ".pytest_cache"),
    )
    return pytester.path


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Per-test outcomes of an inner session run with ``-rA``: ``{nodeid: "passed" | "failed" | ...}``.

    A test whose setup errors (ERROR) keeps that outcome even though its teardown passed.
    """
    found: dict[str, str] = {}
    for line in result.outlines:
        match = _SUMMARY_LINE.match(line)
        if match is not None:
            outcome, nodeid = match.group(1).lower(), match.group(2)
            if found.get(nodeid) not in ("error", "failed"):
                found[nodeid] = outcome
    return found


# -- the "shop" script: a small seed whose outputs exercise every matcher ------------------------

SHOP = "shop"
SHOP_TENANT_ENV = {"DB_HOST": "db.shop-secret.invalid", "API_KEY": "sk-shop-secret-0123"}
SHOP_OVERLAY = {"MODEL": "model-secret-x", "REGION": "eu-secret-1"}
SHOP_SECRETS = (*SHOP_TENANT_ENV.values(), *SHOP_OVERLAY.values())

# v2 (active) and v3 (the candidate, published but never activated) run the same code; each
# reports its own VERSION, so an output proves which version's code ran.
_SHOP_HANDLER = """\
import os

VERSION = {version}


def handler(event, context):
    kind = event.get("kind", "full") if isinstance(event, dict) else "full"
    with context.step("load"):
        if kind == "boom":
            raise ValueError("boom: the input asked this handler to fail")
    with context.step("build"):
        if kind == "small":
            return {{"version": VERSION, "n": 1}}
        if kind == "bad-shape":
            return {{"version": VERSION, "total": "ten"}}
        return {{
            "version": VERSION,
            "id": "INV-0042",
            "total": 10.004,
            "ratio": 0.3333,
            "customer": {{"name": "Ada", "address": {{"city": "Paris", "zip": "75001"}}}},
            "lines": [{{"sku": "A-1", "qty": 1}}, {{"sku": "B-2", "qty": 2}}],
            "seen_env": sorted(context.env),
            "db_host_in_environ": "DB_HOST" in os.environ,
        }}
"""

# v3's declarations: every output key the handler may return (only `version` is required; a
# default makes a field optional), so its outputs satisfy the contract except "bad-shape"'s total.
SHOP_CONTRACT = """\
script "shop"
  The shop fixture script of the plugin's tests.
version "3.0.0"

output
  version : integer
  n : integer = 0
  id : text = ""
  total : number = 0
  ratio : number = 0
  customer : object = null
  lines : list<object> = null
  seen_env : list<text> = null
  db_host_in_environ : boolean = null
"""


def write_shop_seed(root: Path) -> Path:
    """The shop seed: v1..v3 published, v2 active, only v3 declares a contract (its output)."""
    return write_seed(
        root,
        script=SHOP,
        versions={n: _SHOP_HANDLER.format(version=n) for n in (1, 2, 3)},
        active=2,
        overlay=SHOP_OVERLAY,
        tenant_env=SHOP_TENANT_ENV,
        contracts={3: SHOP_CONTRACT},
    )
