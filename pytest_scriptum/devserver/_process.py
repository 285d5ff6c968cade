"""Running `python -m pytest_scriptum.devserver` as a child process and reading its ready line."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from ._addresses import ServerAddresses

__all__ = ["TOKEN_ENV", "DevServerProcess", "DevServerStartError"]

TOKEN_ENV = "SCRIPTUM_DEVSERVER_TOKEN"
_STDERR_TAIL_BYTES = 4000


class DevServerStartError(RuntimeError):
    """The child server died or did not become ready; the message carries its stderr tail."""


class DevServerProcess:
    """`python -m pytest_scriptum.devserver` as a child process.

    The token reaches the child through the environment (never the command line, which `ps`
    shows). The child also stops when this process dies (it watches its stdin pipe).
    `throwaway=True`: the caller deletes `data_dir` after the run, so the child does not fsync
    each commit.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        seed: Path | None,
        token: str,
        org: str,
        org_name: str = "",
        host: str = "127.0.0.1",
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
        throwaway: bool = False,
    ) -> None:
        self._data_dir = Path(data_dir)
        self._seed = Path(seed) if seed is not None else None
        self._token = token
        self._org = org
        self._org_name = org_name
        self._host = host
        self._extra_args = tuple(extra_args)
        self._startup_timeout = startup_timeout
        self._throwaway = throwaway
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._addresses: ServerAddresses | None = None

    def __repr__(self) -> str:  # never shows the token
        return (
            f"DevServerProcess(data_dir={str(self._data_dir)!r}, org={self._org!r}, pid={self.pid_or_none})"
        )

    @property
    def addresses(self) -> ServerAddresses:
        """The child's addresses (after start)."""
        if self._addresses is None:
            raise RuntimeError("DevServerProcess is not started")
        return self._addresses

    @property
    def pid(self) -> int:
        """The child's process id (after start)."""
        if self._proc is None:
            raise RuntimeError("DevServerProcess is not started")
        return self._proc.pid

    @property
    def pid_or_none(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit status once it ended (negative: killed by that signal), else None."""
        return None if self._proc is None else self._proc.poll()

    def command(self) -> list[str]:
        """The child's command line (no secrets in it)."""
        cmd = [sys.executable, "-m", "pytest_scriptum.devserver", "--data", str(self._data_dir)]
        if self._seed is not None:
            cmd += ["--seed", str(self._seed)]
        cmd += ["--host", self._host, "--org", self._org]
        if self._org_name:
            cmd += ["--org-name", self._org_name]
        if self._throwaway:
            cmd.append("--throwaway-data")
        cmd += ["--stop-on-stdin-close", *self._extra_args]
        return cmd

    def start(self) -> ServerAddresses:
        """Spawn the child and wait for its ready line; DevServerStartError if it dies or times out."""
        if self._addresses is not None:
            return self._addresses
        env = dict(os.environ)
        env[TOKEN_ENV] = self._token
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env
        )
        try:
            self._addresses = self._read_ready_line()
        except BaseException:
            self.kill()
            raise
        return self._addresses

    def _read_ready_line(self) -> ServerAddresses:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        deadline = time.monotonic() + self._startup_timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._start_error(f"did not print its ready line within {self._startup_timeout:g} s")
            readable, _, _ = select.select([stdout], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(stdout.fileno(), 4096)
            if not chunk:
                self._proc.wait(timeout=5)
                raise self._start_error(f"exited with code {self._proc.returncode} before it was ready")
            line += chunk
        try:
            data = json.loads(line)
            return ServerAddresses(grpc=str(data["grpc"]), http=str(data["http"]))
        except (ValueError, KeyError, TypeError):
            raise self._start_error(f"printed an unexpected ready line {line[:200]!r}") from None

    def _start_error(self, what: str) -> DevServerStartError:
        return DevServerStartError(
            f"the embedded Scriptum server ({' '.join(self.command())}) {what}; its stderr ends with:\n"
            f"{self.stderr_tail() or '(nothing)'}"
        )

    def stderr_tail(self) -> str:
        """The last few KB the child wrote to stderr."""
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.flush()
        size = self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, size - _STDERR_TAIL_BYTES))
        return self._stderr.read().decode("utf-8", "replace").strip()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the child's stdin (it stops on EOF), wait up to `timeout`, then `terminate`.
        Idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None and proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.terminate(timeout)

    def terminate(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close_pipes()

    def kill(self) -> None:
        """SIGKILL at once (for crash tests). Idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self._proc is not None:
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()

    def __enter__(self) -> DevServerProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.terminate()
        if self._stderr is not None:
            self._stderr.close()
