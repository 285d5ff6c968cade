"""The verification re-run after a rollback, both ends: the same smoke tests, pinned to the rollback
target, in a fresh pytest.

"Verification" means this one thing in the plugin: the smoke re-run on the version a failed gate
rolled back to, and its result (``rollback.Verification``).

A fresh process keeps the two runs apart (its own reports, JUnit file and bundle) and re-runs
test bodies and fixtures exactly as a human would by re-invoking pytest. The parent end
(``Rerun``) hands the child its options through a structured channel: a JSON file of option
values from the options table (``_options.rerun_options``) named by an environment variable, which
the child parses with the same validating parsers (never a line-based argument file built from
user strings: issue 12 input 5). The command line holds only pytest's own flags with absolute
paths, and the node ids (pytest escapes control characters in them; one with a control character
anyway is refused). The session token goes through the environment (never on a command line).
The child runs in its own process group, so an interrupted parent stops it and everything it
started (``Interruption``). The parent reads the child's bundle back with ``evidence.read_bundle``.
The child end is an
ordinary session with ``--scriptum-verification-of=N``: it talks to the parent's server (never a
new embedded one, ``parent_was_embedded``), runs no rollback, fires no hooks, and writes its own
bundle where the parent reads it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pytest_scriptum import _compat
from pytest_scriptum._options import CLEAR, VERIFICATION_OPTIONS_ENV, ScriptumConfig, rerun_options
from pytest_scriptum._session import progress
from pytest_scriptum._session.resources import Connection
from pytest_scriptum._session.signals import Interruption, wait_stoppable
from pytest_scriptum.evidence._files import write_atomic
from pytest_scriptum.evidence.bundle import InvalidBundleError, read_bundle
from pytest_scriptum.rollback import Verification

__all__ = [
    "CHILD_PLUGIN",
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
# Loaded first in the child (-p): what must happen before other plugins configure.
CHILD_PLUGIN = "pytest_scriptum._session.rerun_child"
# However many tests it re-runs, the child gets at most an hour.
_MAX_RUN_S = 3600.0


@dataclass(frozen=True)
class VerificationFiles:
    """The files of the re-run on ``target``, beside the parent's evidence (DESIGN section 4):
    its ``bundle``, ``log``, ``options`` (the JSON channel) and ``nodeids`` (pytest's ``@file``)."""

    bundle: Path
    log: Path
    options: Path
    nodeids: Path

    @classmethod
    def in_dir(cls, workdir: Path, target: int) -> VerificationFiles:
        stem = workdir / f"verification-v{target}"
        suffixes = (".json", ".log", ".options.json", ".nodeids")
        return cls(*(stem.with_name(stem.name + suffix) for suffix in suffixes))


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
    its files in ``workdir``, its JUnit file at ``junit``, its Allure results in ``alluredir``
    (absolute paths); ``interruption`` stops it when the parent gets SIGINT/SIGTERM."""

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
    interruption: Interruption | None = None

    @property
    def files(self) -> VerificationFiles:
        return VerificationFiles.in_dir(self.workdir, self.target)

    def options(self) -> dict[str, str | None]:
        """The child's scriptum options (the JSON channel), from the options table."""
        conn = self.conn
        return rerun_options(
            self.cfg,
            {
                "version": self.target,
                "verification_of": self.candidate,
                "rollback": "off",
                "publish": False,  # a re-run never publishes
                "env_file": CLEAR,  # nor imports the tenant env
                "overlay": CLEAR,  # nor changes the overlay (it sees the one the parent left)
                "rollback_to": CLEAR,  # the target is the version under test there
                "shard": CLEAR,  # the node ids it is given are the ones to repeat
                "baseline": "off",  # pinned to the target: there is nothing to pair it with
                # The parent's server and organization headers (each only when the parent sends it).
                "endpoint": conn.endpoint,
                "http_url": conn.http_url,
                "org": conn.org or None,
                "org_name": conn.org_name or None,
                "token_env": TOKEN_ENV,
                "evidence": self.files.bundle,
            },
        )

    def args(self) -> list[str]:
        """The child's pytest arguments: the node ids' ``@file`` and pytest's own flags with absolute
        paths (a list for exec, never parsed by a shell or split on lines)."""
        args = [f"@{self.files.nodeids}", "-p", CHILD_PLUGIN, "-p", "no:cacheprovider"]
        args += ["--rootdir", str(self.rootdir), "-rfE"]
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
        unsafe = [nodeid for nodeid in self.nodeids if not nodeid.isprintable()]
        if unsafe:
            return Verification(
                self.target, "inconclusive", f"a node id holds a control character: {unsafe[0]!r}"
            )
        # A file keeps thousands of node ids off the command line (pytest >= 8.2 reads "@file").
        write_atomic(files.nodeids, "\n".join(self.nodeids) + "\n")
        write_atomic(files.options, json.dumps(self.options(), indent=2) + "\n")
        per_round = self.cfg.concurrency if isinstance(self.cfg.concurrency, int) else 1  # auto: worst case
        rounds = math.ceil(len(self.nodeids) / max(per_round, 1))
        deadline = min(_MAX_RUN_S, 120.0 + rounds * (self.cfg.timeout + 10.0))
        with files.log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pytest", *self.args()],
                cwd=self.rootdir,
                env=_child_env(self.conn, files.options),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stopped as one when the parent is interrupted
            )
            if self.interruption is not None:
                with self.interruption.child(proc):
                    code = wait_stoppable(proc, self.interruption, deadline)
            else:
                code = wait_stoppable(proc, None, deadline)
        return self._read_back(code)

    def _read_back(self, code: int | None) -> Verification:
        files = self.files
        try:
            data = read_bundle(files.bundle)
        except InvalidBundleError as exc:
            if files.bundle.is_file():
                why = f"left an unreadable bundle: {exc}"
            else:
                why = "was stopped" if code is None else f"exited {code} without evidence"
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


def _child_env(conn: Connection, options: Path) -> dict[str, str]:
    # Built at the call, never held in the re-run's locals (pytest --showlocals prints those).
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    env[TOKEN_ENV] = conn.token
    env[EMBEDDED_ENV] = "1" if conn.embedded else "0"
    env[VERIFICATION_OPTIONS_ENV] = str(options)
    return env


def verify_rollback(
    config: pytest.Config,
    cfg: ScriptumConfig,
    conn: Connection,
    *,
    nodeids: Sequence[str],
    target: int,
    candidate: int,
    workdir: Path,
    interruption: Interruption | None = None,
) -> Verification:
    """Parent end, from the parent's session (DESIGN section 4 "One place"): the re-run's files go
    in ``workdir`` (the parent's evidence directory), its JUnit file beside the parent's (both
    absolute: the child runs in the rootdir, the parent's relative paths are relative to where it
    was invoked), its Allure results into the parent's directory, never cleaned by the child."""
    parent_junit = _compat.junit_path(config)
    invoked = config.invocation_params.dir
    rerun = Rerun(
        cfg,
        conn,
        nodeids,
        target,
        candidate,
        workdir.resolve(),
        config.inipath,
        config.rootpath,
        junit=junit_path((invoked / parent_junit).resolve(), target) if parent_junit is not None else None,
        alluredir=_compat.allure_results_dir(config),
        interruption=interruption,
    )
    with progress.shown(config, rerun.files.bundle, target=target):  # "n/N tests done" meanwhile
        return rerun.run()
