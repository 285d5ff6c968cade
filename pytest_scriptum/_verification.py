"""The verification re-run after a rollback: the same smoke tests, pinned to the target, in a fresh pytest.

A fresh process keeps the two runs apart (its own reports, JUnit file and bundle) and re-runs
test bodies and fixtures exactly as a human would by re-invoking pytest. It talks to the same
server (never a new embedded one) with the session token passed through the environment.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_scriptum._options import ScriptumConfig
from pytest_scriptum._session import VERIFY_EMBEDDED_ENV, Connection
from pytest_scriptum.rollback import Verification

__all__ = ["VERIFY_TOKEN_ENV", "run_verification"]

VERIFY_TOKEN_ENV = "SCRIPTUM_VERIFICATION_TOKEN"


def _args(
    cfg: ScriptumConfig,
    conn: Connection,
    *,
    nodeids: Sequence[str],
    target: int,
    candidate: int,
    bundle: Path,
    inipath: Path | None,
    rootdir: Path,
    junit: Path | None,
    alluredir: Path | None,
) -> list[str]:
    args = [
        *nodeids,
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(rootdir),
        "-rfE",
        "--scriptum-version",
        str(target),
        "--scriptum-verification-of",
        str(candidate),
        "--scriptum-rollback",
        "off",
        "--scriptum-endpoint",
        conn.endpoint,
        "--scriptum-transport",
        cfg.transport,
        "--scriptum-timeout",
        str(cfg.timeout),
        "--scriptum-retries",
        str(cfg.retries),
        "--scriptum-concurrency",
        str(cfg.concurrency),
        "--scriptum-min-pass-rate",
        str(cfg.min_pass_rate),
        "--scriptum-min-tests",
        str(cfg.min_tests),
        "--scriptum-max-errors",
        str(cfg.max_errors),
        "--scriptum-evidence",
        str(bundle),
        "-o",
        f"scriptum_token_env={VERIFY_TOKEN_ENV}",
        "-o",
        "scriptum_rollback_to=",
    ]
    if inipath is not None:
        args += ["-c", str(inipath)]
    # The same organization headers as the parent: each only when the parent sends it.
    if conn.org:
        args += ["--scriptum-org", conn.org]
    if conn.org_name:
        args += ["--scriptum-org-name", conn.org_name]
    if cfg.script:
        args += ["--scriptum-script", cfg.script]
    if conn.http_url:
        args += ["--scriptum-http-url", conn.http_url]
    if cfg.require_env:
        args += ["--scriptum-require-env", ",".join(cfg.require_env)]
    if cfg.incident:
        args += ["--scriptum-incident", cfg.incident]
    if cfg.insecure:
        args.append("--scriptum-insecure")
    if cfg.no_env:
        args.append("--scriptum-no-env")
    if junit is not None:
        args += ["--junitxml", str(junit)]
    if alluredir is not None:
        args += ["--alluredir", str(alluredir)]
    return args


def _child_env(conn: Connection) -> dict[str, str]:
    # Built at the call, never held in run_verification's locals (pytest --showlocals prints those).
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    env[VERIFY_TOKEN_ENV] = conn.token
    env[VERIFY_EMBEDDED_ENV] = "1" if conn.embedded else "0"
    return env


def run_verification(
    cfg: ScriptumConfig,
    conn: Connection,
    *,
    nodeids: Sequence[str],
    target: int,
    candidate: int,
    workdir: Path,
    inipath: Path | None,
    rootdir: Path,
    junit: Path | None = None,
    alluredir: Path | None = None,
) -> Verification:
    """Re-run ``nodeids`` pinned to ``target`` and read back the child's evidence bundle."""
    workdir.mkdir(parents=True, exist_ok=True)
    bundle = workdir / f"verification-v{target}.json"
    log = workdir / f"verification-v{target}.log"
    bundle.unlink(missing_ok=True)
    if not nodeids:
        return Verification(version=target, verdict="inconclusive", reason="no smoke tests to re-run")
    args = _args(
        cfg,
        conn,
        nodeids=nodeids,
        target=target,
        candidate=candidate,
        bundle=bundle,
        inipath=inipath,
        rootdir=rootdir,
        junit=junit,
        alluredir=alluredir,
    )
    # An args file keeps thousands of node ids off the command line (pytest >= 8.2 reads "@file").
    argsfile = workdir / f"verification-v{target}.args"
    argsfile.write_text("\n".join(args) + "\n")
    rounds = math.ceil(len(nodeids) / max(cfg.concurrency, 1))
    deadline = min(3600.0, 120.0 + rounds * (cfg.timeout + 10.0))
    try:
        with log.open("w") as out:
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", f"@{argsfile}"],
                cwd=rootdir,
                env=_child_env(conn),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=deadline,
                check=False,
            )
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        code = None
    if not bundle.is_file():
        why = "timed out" if code is None else f"exited {code} without evidence"
        return Verification(
            version=target,
            verdict="inconclusive",
            reason=f"verification run {why} (log: {log})",
            exit_code=code,
            log=str(log),
            junit=str(junit) if junit else None,
        )
    data = json.loads(bundle.read_text())
    gate = data.get("gate", {})
    return Verification(
        version=target,
        verdict=str(data.get("verdict")),
        reason=str(data.get("reason")),
        passed=int(gate.get("passed", 0)),
        failed=int(gate.get("failed", 0)),
        errors=int(gate.get("errors", 0)),
        skipped=int(gate.get("skipped", 0)),
        tests=tuple(data.get("tests", [])),
        exit_code=code,
        log=str(log),
        junit=str(junit) if junit else None,
        bundle=str(bundle),
    )
