"""The verification re-run after a rollback, both ends: the same smoke tests, pinned to the rollback
target, in a fresh pytest.

"Verification" means this one thing in the plugin: the smoke re-run on the version a failed gate
rolled back to, and its result (``rollback.Verification``).

A fresh process keeps the two runs apart (its own reports, JUnit file and bundle) and re-runs
test bodies and fixtures exactly as a human would by re-invoking pytest. The parent end
(``Rerun``) writes the child's arguments from the options table
(``_options.rerun_args``), passes the session token through the environment (never on a command
line), and reads the child's bundle back with ``evidence.read_bundle``. The child end is an
ordinary session with ``--scriptum-verification-of=N``: it talks to the parent's server (never a
new embedded one, ``parent_was_embedded``), runs no rollback, fires no hooks, and writes its own
bundle where the parent reads it.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pytest_scriptum import _compat
from pytest_scriptum._options import CLEAR, ScriptumConfig, rerun_args
from pytest_scriptum._session.resources import Connection
from pytest_scriptum.evidence.bundle import InvalidBundleError, read_bundle
from pytest_scriptum.rollback import Verification

__all__ = [
    "EMBEDDED_ENV",
    "TOKEN_ENV",
    "Rerun",
    "VerificationFiles",
    "junit_path",
    "parent_was_embedded",
    "verify_rollback",
]

# Set by the parent in the child's environment: the session token, and whether the parent's server
# is the embedded one (so the child's evidence says "embedded" too).
TOKEN_ENV = "SCRIPTUM_VERIFICATION_TOKEN"
EMBEDDED_ENV = "SCRIPTUM_VERIFICATION_EMBEDDED"
# However many tests it re-runs, the child gets at most an hour.
_MAX_RUN_S = 3600.0


@dataclass(frozen=True)
class VerificationFiles:
    """The files of the re-run on ``target``, beside the parent's evidence (DESIGN section 4)."""

    bundle: Path
    log: Path
    args: Path

    @classmethod
    def in_dir(cls, workdir: Path, target: int) -> VerificationFiles:
        stem = workdir / f"verification-v{target}"
        return cls(*(stem.with_suffix(suffix) for suffix in (".json", ".log", ".args")))


def junit_path(parent_junit: Path, target: int) -> Path:
    """The re-run's JUnit file next to the parent's: ``junit.xml`` -> ``junit.verification-v3.xml``."""
    suffix = parent_junit.suffix or ".xml"
    return parent_junit.with_name(f"{parent_junit.stem}.verification-v{target}{suffix}")


def parent_was_embedded(cfg: ScriptumConfig, environ: Mapping[str, str] | None = None) -> bool:
    """Child end: this verification re-run talks to its parent's embedded server."""
    env = os.environ if environ is None else environ
    return cfg.is_verification_run and env.get(EMBEDDED_ENV) == "1"


@dataclass(frozen=True)
class Rerun:
    """One verification re-run: ``nodeids`` of the parent's selection pinned to ``target`` after
    rolling back from ``candidate``, with the parent's options, connection, ini file and rootdir;
    its files in ``workdir``, its JUnit file at ``junit``, its Allure results in ``alluredir``."""

    cfg: ScriptumConfig
    conn: Connection
    nodeids: Sequence[str]
    target: int
    candidate: int
    workdir: Path
    inipath: Path | None
    rootdir: Path
    junit: Path | None = None
    alluredir: Path | None = None

    @property
    def files(self) -> VerificationFiles:
        return VerificationFiles.in_dir(self.workdir, self.target)

    def args(self) -> list[str]:
        """The child's pytest arguments: the options from the table, then pytest's own."""
        conn = self.conn
        args = [*self.nodeids, "-p", "no:cacheprovider", "--rootdir", str(self.rootdir), "-rfE"]
        args += rerun_args(
            self.cfg,
            {
                "version": self.target,
                "verification_of": self.candidate,
                "rollback": "off",
                "rollback_to": CLEAR,  # the target is the version under test there
                # The parent's server and organization headers (each only when the parent sends it).
                "endpoint": conn.endpoint,
                "http_url": conn.http_url,
                "org": conn.org or None,
                "org_name": conn.org_name or None,
                "token_env": TOKEN_ENV,
                "evidence": self.files.bundle,
            },
        )
        for flag, path in (("-c", self.inipath), ("--junitxml", self.junit), ("--alluredir", self.alluredir)):
            if path is not None:
                args += [flag, str(path)]
        return args

    def run(self) -> Verification:
        """Run the child and read back its bundle (inconclusive when there is none to read)."""
        files = self.files
        self.workdir.mkdir(parents=True, exist_ok=True)
        files.bundle.unlink(missing_ok=True)
        if not self.nodeids:
            return Verification(self.target, "inconclusive", "no smoke tests to re-run")
        # An args file keeps thousands of node ids off the command line (pytest >= 8.2 reads "@file").
        files.args.write_text("\n".join(self.args()) + "\n")
        rounds = math.ceil(len(self.nodeids) / max(self.cfg.concurrency, 1))
        deadline = min(_MAX_RUN_S, 120.0 + rounds * (self.cfg.timeout + 10.0))
        try:
            with files.log.open("w") as out:
                proc = subprocess.run(
                    [sys.executable, "-m", "pytest", f"@{files.args}"],
                    cwd=self.rootdir,
                    env=_child_env(self.conn),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=deadline,
                    check=False,
                )
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
        return self._read_back(code)

    def _read_back(self, code: int | None) -> Verification:
        files = self.files
        try:
            data = read_bundle(files.bundle)
        except InvalidBundleError as exc:
            if files.bundle.is_file():
                why = f"left an unreadable bundle: {exc}"
            else:
                why = "timed out" if code is None else f"exited {code} without evidence"
                why += f" (log: {files.log})"
            result = Verification(self.target, "inconclusive", f"verification run {why}")
        else:
            gate = data["gate"]
            result = Verification(
                self.target,
                str(data["verdict"]),
                str(data["reason"]),
                tuple(data["tests"]),
                passed=int(gate["passed"]),
                failed=int(gate["failed"]),
                errors=int(gate["errors"]),
                skipped=int(gate["skipped"]),
                bundle=str(files.bundle),
            )
        junit = str(self.junit) if self.junit else None
        return replace(result, exit_code=code, log=str(files.log), junit=junit)


def _child_env(conn: Connection) -> dict[str, str]:
    # Built at the call, never held in the re-run's locals (pytest --showlocals prints those).
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    env[TOKEN_ENV] = conn.token
    env[EMBEDDED_ENV] = "1" if conn.embedded else "0"
    return env


def verify_rollback(
    config: pytest.Config,
    cfg: ScriptumConfig,
    conn: Connection,
    *,
    nodeids: Sequence[str],
    target: int,
    candidate: int,
) -> Verification:
    """Parent end, from the parent's session: the re-run's files go beside the parent's evidence
    (a temporary directory without ``--scriptum-evidence``), its JUnit file beside the parent's,
    its Allure results into the parent's directory."""
    workdir = cfg.evidence.parent if cfg.evidence else Path(tempfile.mkdtemp(prefix="scriptum-verification-"))
    parent_junit = _compat.junit_path(config)
    return Rerun(
        cfg,
        conn,
        nodeids,
        target,
        candidate,
        workdir,
        config.inipath,
        config.rootpath,
        junit=junit_path(Path(parent_junit), target) if parent_junit is not None else None,
        alluredir=_compat.allure_results_dir(config),
    ).run()
