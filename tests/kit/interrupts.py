"""Inner pytest sessions the outer test can signal or kill at a named moment, and the platform they
run against (issue 12: interrupted rollbacks, hook failures, concurrent actors).

- ``fresh_calc``: a dev server of its own (the calc seed: v1 good, v2 bad and active, v3 good),
  whose state the test changes on purpose; ``Platform.of`` it.
- ``InnerSession``: ``python -m pytest`` in the pytester directory as a real subprocess of its own
  process group (``Popen``), its output in a file; ``signal``, ``kill``, ``wait``.
- ``ACTOR_CONFTEST``: a conftest whose hooks act on the platform like another actor would, through
  the environment ``actor_env`` gives it (the server's address, the organization).
- ``processes_with_env``: the live processes whose environment holds a given ``KEY=value`` (to show
  a stopped verification child left nothing behind);
- ``until``: wait for a condition (a file, the platform's state), never for a fixed time.

Moments are synchronised through the server (``Platform.wait_for`` on its call counters while a
latency fault holds the call) or through files, never through sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kit.constants import ORG, OTHER_ORG, OTHER_TOKEN, TOKEN
from kit.platform import Platform
from kit.seeds.doubles import SCRIPT, write_calc_seed
from pytest_scriptum.devserver import DevServer

__all__ = [
    "ACTOR_CONFTEST",
    "FAILING_SUITE",
    "InnerSession",
    "actor_env",
    "fresh_calc",
    "processes_with_env",
    "until",
]

GRPC_ENV = "ISSUE12_SERVER_GRPC"
ORG_ENV = "ISSUE12_SERVER_ORG"

# Three smoke tests, two of which fail on v2 (off by one) and pass on v1.
FAILING_SUITE = f"""
import pytest

pytestmark = pytest.mark.scriptum({SCRIPT!r})


@pytest.mark.smoke_input({{"x": 0}})
@pytest.mark.smoke_expect({{"doubled": 0}})
def test_zero():
    pass


@pytest.mark.smoke_input({{"x": 1}})
@pytest.mark.smoke_expect({{"doubled": 2}})
def test_one():
    pass


@pytest.mark.smoke_input({{"x": 2}})
@pytest.mark.smoke_expect({{"doubled": 4}})
def test_two():
    pass
"""

# Hooks that act on the platform (faults, an operator's activation) through its real gRPC API.
ACTOR_CONFTEST = f"""
import os

import grpc

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc


def _auth():
    return (
        ("authorization", "Bearer " + os.environ["DODIL_TOKEN"]),
        ("x-organization-id", os.environ[{ORG_ENV!r}]),
    )


def set_faults(**fields):
    with grpc.insecure_channel(os.environ[{GRPC_ENV!r}]) as channel:
        pb_grpc.ScriptumDevAdminStub(channel).SetFaults(pb.Faults(**fields), metadata=_auth(), timeout=10)


def activate(version, **extensions):
    with grpc.insecure_channel(os.environ[{GRPC_ENV!r}]) as channel:
        pb_grpc.ScriptumServiceStub(channel).RollbackScript(
            pb.RollbackScriptRequest(name={SCRIPT!r}, to_version=version, **extensions),
            metadata=_auth(),
            timeout=10,
        )
"""


def fresh_calc(tmp_path: Path) -> Platform:
    """A started dev server with its own data directory and the calc seed; ``close()`` stops it."""
    seed = write_calc_seed(tmp_path / "calc-seed")
    server = DevServer(
        data_dir=tmp_path / "calc-data", seed=seed, principals={TOKEN: ORG, OTHER_TOKEN: OTHER_ORG}
    )
    server.start()
    return Platform.of(server, token=TOKEN, org=ORG, script=SCRIPT, version=2)


def actor_env(platform: Platform) -> dict[str, str]:
    """What ``ACTOR_CONFTEST`` reads: the server's gRPC address and the organization."""
    return {GRPC_ENV: platform.grpc, ORG_ENV: platform.org}


class InnerSession:
    """``python -m pytest ARGS`` in ``pytester.path``, running while the outer test acts."""

    def __init__(self, pytester: pytest.Pytester, *args: str, env: dict[str, str] | None = None) -> None:
        self.cwd = pytester.path
        self.out = pytester.path / f"inner-{len(list(pytester.path.glob('inner-*.log')))}.log"
        environ = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                cwd=self.cwd,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # like a CI job: signals go to it, not to the outer test
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the pytest process itself (as CI's cancel or a Ctrl-C does)."""
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """kill -9 the pytest process (not its group: what it started is left as a crash leaves it)."""
        self.proc.send_signal(signal.SIGKILL)

    def wait(self, timeout_s: float = 240.0) -> tuple[int, str]:
        """(exit code, output) once it ended; its group is killed if it outlives ``timeout_s``."""
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        return code, self.out.read_text(encoding="utf-8", errors="replace")


def processes_with_env(key: str, value: str) -> list[int]:
    """Pids of live processes (of this user) whose environment holds ``key=value``."""
    wanted = f"{key}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if wanted in environ and state != "Z":
            found.append(int(entry.name))
    return found


def until(condition: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    """Wait until ``condition()`` holds (checked every 20 ms), else fail naming ``what``: a
    condition the test waits for, never a fixed sleep."""
    deadline = time.monotonic() + timeout_s
    tick = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        tick.wait(0.02)
