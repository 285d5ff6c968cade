"""`scriptum-devserver`: run the embedded Scriptum server until SIGTERM/SIGINT.

Prints one JSON line on stdout when ready: {"grpc": "127.0.0.1:PORT", "http": "http://127.0.0.1:PORT"}.
Exit codes: 0 after SIGTERM/SIGINT, 2 for a usage error or a malformed seed (one line naming the
file), 1 when the server cannot start for another reason (e.g. a port in use).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._errors import ApiError
from ._faults import validate_faults
from ._process import TOKEN_ENV
from ._seed import SeedError
from ._server import DevServer

__all__ = ["main"]

_log = logging.getLogger("pytest_scriptum.devserver")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scriptum-devserver",
        description="Run the embedded Scriptum server (gRPC + HTTP gateway) on a local data directory.",
    )
    parser.add_argument(
        "--seed", type=Path, help="seed directory (tenant.env, scripts/NAME/vN/handler.py, ...)"
    )
    parser.add_argument("--data", type=Path, help="data directory (default: a new temporary directory)")
    parser.add_argument(
        "--throwaway-data",
        action="store_true",
        help="the --data directory is deleted after this run: commits are not fsynced "
        "(always so for the default temporary directory)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--grpc-port", type=int, default=0, help="gRPC port (default 0: a free port)")
    parser.add_argument("--http-port", type=int, default=0, help="HTTP gateway port (default 0: a free port)")
    parser.add_argument("--token", help=f"bearer token to accept (default: ${TOKEN_ENV})")
    parser.add_argument("--org", default="local", help="organization (id) of the token; the seed goes here")
    parser.add_argument(
        "--org-name", default="", help="the organization's name for x-organization-name (default: the id)"
    )
    parser.add_argument(
        "--extra-principal",
        action="append",
        default=[],
        metavar="TOKEN:ORG",
        help="another accepted token and its organization (repeatable)",
    )
    parser.add_argument("--fault-latency-ms", type=int, default=0, help="latency added to every call")
    parser.add_argument("--fault-error-rate", type=float, default=0.0, help="share (0..1) of calls that fail")
    parser.add_argument(
        "--fault-error-status", default="UNAVAILABLE", help="gRPC status name of injected errors"
    )
    parser.add_argument("--fault-error-next", type=int, default=0, help="the next N calls fail")
    parser.add_argument("--fault-stall", action="store_true", help="calls hang until the client gives up")
    parser.add_argument("--fault-version-skew", type=int, default=0, help="added to reported thread versions")
    parser.add_argument(
        "--fault-latency-after-ms", type=int, default=0, help="latency added after a call was applied"
    )
    parser.add_argument(
        "--fault-platform-failure",
        default="",
        help="new threads fail with this PLATFORM_* error code (e.g. PLATFORM_CAPACITY)",
    )
    parser.add_argument(
        "--fault-fail-version",
        type=int,
        default=0,
        help="threads pinned to this version fail as the script's own error (draft tests never); 0 = off",
    )
    parser.add_argument(
        "--fault-max-in-flight",
        type=int,
        default=0,
        metavar="K",
        help="a rate-limited platform: new threads beyond K in flight per organization answer "
        "RESOURCE_EXHAUSTED with a retry hint (default 0: no limit)",
    )
    parser.add_argument(
        "--fault-methods",
        default="",
        help="comma-separated ScriptumService methods the faults apply to (default all)",
    )
    parser.add_argument(
        "--stop-on-stdin-close", action="store_true", help="shut down when stdin reaches EOF (parent died)"
    )
    return parser


def _principals(
    parser: argparse.ArgumentParser, token: str, org: str, extra: Sequence[str]
) -> dict[str, str]:
    principals = {token: org}
    for item in extra:
        extra_token, sep, extra_org = item.rpartition(":")
        if not sep or not extra_token or not extra_org:
            parser.error("--extra-principal expects TOKEN:ORG (both non-empty)")
        if principals.get(extra_token, extra_org) != extra_org:
            parser.error("--extra-principal: a token can act for one organization only")
        principals[extra_token] = extra_org
    return principals


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code (2 for usage errors, 1 for start-up failures)."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="scriptum-devserver: %(levelname)s: %(message)s"
    )
    token = args.token or os.environ.get(TOKEN_ENV, "")
    if not token:
        parser.error(f"no token: pass --token TOKEN or set the environment variable {TOKEN_ENV}")
    if not args.org:
        parser.error("--org must not be empty")
    principals = _principals(parser, token, args.org, args.extra_principal)
    methods = [name.strip() for name in args.fault_methods.split(",") if name.strip()]
    try:
        faults = validate_faults(
            pb.Faults(
                latency_ms=args.fault_latency_ms,
                error_rate=args.fault_error_rate,
                error_status=args.fault_error_status,
                error_next=args.fault_error_next,
                stall=args.fault_stall,
                version_skew=args.fault_version_skew,
                methods=methods,
                latency_after_ms=args.fault_latency_after_ms,
                platform_failure=args.fault_platform_failure,
                max_in_flight=args.fault_max_in_flight,
                fail_version=args.fault_fail_version,
            )
        )
    except ApiError as error:
        parser.error(error.message.replace("faults.", "--fault-").replace("_", "-"))
    if not _is_loopback(args.host):
        _log.warning(
            "binding %s: gRPC and HTTP are plaintext (no TLS); anyone on the network can reach them",
            args.host,
        )

    temp_dir = None if args.data is not None else tempfile.TemporaryDirectory(prefix="scriptum-devserver-")
    data_dir = args.data if temp_dir is None else Path(temp_dir.name)
    durable = temp_dir is None and not args.throwaway_data
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.stop_on_stdin_close:
        threading.Thread(target=_watch_stdin, args=(stop,), name="stdin-watch", daemon=True).start()

    server = DevServer(
        data_dir=data_dir,
        seed=args.seed,
        host=args.host,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        principals=principals,
        org_names={args.org: args.org_name} if args.org_name else None,
        faults=faults,
        durable=durable,
    )
    try:
        try:
            addresses = server.start()
        except SeedError as exc:
            print(f"scriptum-devserver: malformed seed: {exc}", file=sys.stderr, flush=True)
            return 2
        except (OSError, RuntimeError) as exc:
            _log.error("cannot start: %s", exc)
            return 1
        _log.info(
            "serving gRPC on %s and HTTP on %s (data: %s, %s)",
            addresses.grpc,
            addresses.http,
            data_dir,
            "durable" if durable else "throwaway: no fsync per commit",
        )
        print(json.dumps(asdict(addresses)), flush=True)
        while not stop.wait(0.5):
            pass
        _log.info("stopping")
        return 0
    finally:
        server.stop()
        if temp_dir is not None:
            temp_dir.cleanup()


def _watch_stdin(stop: threading.Event) -> None:
    # The raw fd, not sys.stdin: a daemon thread blocked inside a buffered reader's lock makes the
    # interpreter abort at exit ("could not acquire lock for <stdin> at interpreter shutdown").
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    stop.set()
