"""The platform process dies: before the session (preflight fails), in the middle of the run
(inconclusive, no rollback), just before the rollback is sent (rollback_failed, exit 21, the
operator gets the runbook's manual command) and after the rollback was applied but before it was
answered (exit 21; the restarted server holds exactly that rollback). The server is a real child
process killed with SIGKILL from inside the inner session; a restart on the same data directory
shows what it kept."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kit import ORG, TOKEN, Platform
from kit.seeds.doubles import SCRIPT, calc_platform

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.devserver import DevServerProcess

PID_ENV = "RELIABILITY_SERVER_PID"
GRPC_ENV = "RELIABILITY_SERVER_GRPC"
ORG_ENV = "RELIABILITY_SERVER_ORG"

KILL_BEFORE_ROLLBACK = f"""
import os
import signal


def pytest_scriptum_before_rollback(plan):
    os.kill(int(os.environ[{PID_ENV!r}]), signal.SIGKILL)
"""


class ChildPlatform:
    """A DevServerProcess on a data dir that outlives it, so a restart can read what was kept."""

    def __init__(self, data_dir: Path, seed: Path) -> None:
        self.data_dir = data_dir
        self.seed = seed
        self.process = DevServerProcess(data_dir=data_dir, seed=seed, token=TOKEN, org=ORG)
        addresses = self.process.start()
        self.platform = calc_platform(addresses.grpc, addresses.http)

    def args(self, *more: str, version: int) -> list[str]:
        return self.platform.args(*more, version=version)

    @contextmanager
    def restarted(self) -> Iterator[Platform]:
        """The server again, on the same data directory (not re-seeded: it holds state)."""
        with DevServerProcess(data_dir=self.data_dir, seed=None, token=TOKEN, org=ORG) as again:
            plat = calc_platform(again.addresses.grpc, again.addresses.http)
            try:
                yield plat
            finally:
                plat.close()


@pytest.fixture
def child(tmp_path: Path, seed_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChildPlatform]:
    plat = ChildPlatform(tmp_path / "data", seed_dir)
    monkeypatch.setenv(PID_ENV, str(plat.process.pid))
    monkeypatch.setenv(GRPC_ENV, plat.platform.grpc)
    monkeypatch.setenv(ORG_ENV, ORG)
    yield plat
    plat.platform.close()
    plat.process.kill()


def test_killed_before_the_run_fails_preflight(pytester: pytest.Pytester, child: ChildPlatform) -> None:
    child.process.kill()
    pytester.makepyfile(
        test_smoke="import pytest\n\n@pytest.mark.smoke_input({'x': 1})\ndef test_one():\n    pass\n"
    )
    result = pytester.runpytest(*child.args("--scriptum-retries=1", version=2))
    assert result.ret == 20, result.stdout.str()
    result.assert_outcomes()  # a failed checklist runs no smoke test
    out = result.stdout.str()
    assert "verdict: INCONCLUSIVE" in out
    assert "preflight: FAILED platform reachable and credentials accepted: platform error:" in out
    assert "UNAVAILABLE" in out


MID_RUN_SUITE = f"""
import os
import signal

import pytest

# serial: each run happens when its test runs, so the kill lands between two runs.
pytestmark = pytest.mark.scriptum({SCRIPT!r}, serial=True)


@pytest.mark.smoke_input({{"x": 1}})
@pytest.mark.smoke_expect({{"doubled": 2}})
def test_1_fails_on_the_bad_candidate():
    pass


@pytest.mark.smoke_input({{"x": 2}})
@pytest.mark.smoke_expect({{"version": 2}})
def test_2_passes_then_kills_the_platform(smoke_thread):
    os.kill(int(os.environ[{PID_ENV!r}]), signal.SIGKILL)


@pytest.mark.smoke_input({{"x": 3}})
def test_3_platform_gone():
    pass


@pytest.mark.smoke_input({{"x": 4}})
def test_4_platform_gone():
    pass
"""


# The same suite with the platform left alive (test 2 prints the pid instead of killing it).
NO_KILL_SUITE = MID_RUN_SUITE.replace("os.kill(", "print(")


def test_killed_mid_run_is_inconclusive_without_rollback(
    pytester: pytest.Pytester, child: ChildPlatform
) -> None:
    pytester.makepyfile(test_smoke=MID_RUN_SUITE)
    # 1 failed, 1 passed, 2 errors at a 0.5 pass rate: the failure alone proves nothing (had both
    # errored tests passed, 3 of 4 would pass), so the gate must not act on it.
    result = pytester.runpytest(
        *child.args("--scriptum-min-pass-rate=0.5", "--scriptum-retries=1", version=2)
    )
    assert result.ret == 20, result.stdout.str()
    result.assert_outcomes(passed=1, failed=1, errors=2)
    out = result.stdout.str()
    assert "verdict: INCONCLUSIVE" in out
    assert "rollback:" not in out
    with child.restarted() as plat:
        script = plat.script()
        assert script.active_version == 2
        # The seed's two publishes, and nothing else.
        assert [entry.kind for entry in script.activation_history] == [pb.ACTIVATION_KIND_PUBLISH] * 2


def test_killed_during_rollback_prints_the_manual_command(
    pytester: pytest.Pytester, child: ChildPlatform
) -> None:
    pytester.makeconftest(KILL_BEFORE_ROLLBACK)
    pytester.makepyfile(test_smoke=NO_KILL_SUITE)
    result = pytester.runpytest(*child.args("--scriptum-retries=1", "--scriptum-incident=INC-7", version=2))
    assert result.ret == 21, result.stdout.str()
    out = result.stdout.str()
    assert "verdict: FAIL" in out
    assert "rollback: rollback_failed - rollback call failed" in out
    # The call never reached the platform, and reading back what happened failed too.
    assert "RollbackScript: UNAVAILABLE" in out and "the read-back failed" in out
    assert f"ACTION REQUIRED, run by hand: dodil scriptum version rollback {SCRIPT} --to 1" in out
    with child.restarted() as plat:
        assert plat.script().active_version == 2  # the rollback never landed
        assert plat.rollbacks_in_history() == []


# Starts a watcher when the rollback is about to be sent: it kills the platform the moment the
# rollback is visible (applied), while the RollbackScript call still waits for its late answer.
KILL_ONCE_APPLIED = f"""
import os
import signal
import threading

import grpc

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc


def _kill_when_rolled_back():
    auth = (
        ("authorization", "Bearer " + os.environ["DODIL_TOKEN"]),
        ("x-organization-id", os.environ[{ORG_ENV!r}]),
    )
    tick = threading.Event()
    with grpc.insecure_channel(os.environ[{GRPC_ENV!r}]) as channel:
        stub = pb_grpc.ScriptumServiceStub(channel)
        request = pb.GetScriptRequest(name={SCRIPT!r})
        while stub.GetScript(request, metadata=auth, timeout=10).active_version != 1:
            tick.wait(0.01)
    os.kill(int(os.environ[{PID_ENV!r}]), signal.SIGKILL)


def pytest_scriptum_before_rollback(plan):
    threading.Thread(target=_kill_when_rolled_back, daemon=True).start()
"""


def test_killed_after_the_rollback_applied_but_before_it_answered(
    pytester: pytest.Pytester, child: ChildPlatform
) -> None:
    pytester.makeconftest(KILL_ONCE_APPLIED)
    pytester.makepyfile(test_smoke=NO_KILL_SUITE)
    # The rollback is applied at once and answered a minute later: the kill lands in between.
    child.platform.set_faults(latency_after_ms=60_000, methods=["RollbackScript"])
    result = pytester.runpytest(*child.args("--scriptum-retries=1", "--scriptum-incident=INC-8", version=2))
    assert result.ret == 21, result.stdout.str()  # the outcome could not be read back: a human acts
    out = result.stdout.str()
    assert "verdict: FAIL" in out
    assert "ACTION REQUIRED" in out
    assert "rolled_back_verified" not in out
    with child.restarted() as plat:
        assert plat.script().active_version == 1  # the rollback did land, exactly once
        (rollback,) = plat.rollbacks_in_history()
        assert (rollback.from_version, rollback.version, rollback.incident_id) == (2, 1, "INC-8")
