"""The CLI and DevServerProcess as real child processes: ready line, exit codes, kill -9
durability, PLATFORM_RESTART for threads a restart interrupted, faults given at start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
from kit import AUTH, ORG, TOKEN
from kit.constants import CHANNEL_OPTIONS
from kit.seeds import DEVSERVER_SEED as SEED
from kit.transports import GrpcTransport, create, settle

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServerProcess, DevServerStartError


def test_cli_prints_one_ready_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_scriptum.devserver",
            "--seed",
            str(SEED),
            "--data",
            str(tmp_path / "d"),
            "--token",
            TOKEN,
            "--org",
            ORG,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert set(ready) == {"grpc", "http"}
        assert ready["grpc"].startswith("127.0.0.1:") and ready["http"].startswith("http://127.0.0.1:")
        assert httpx.get(f"{ready['http']}/ready").json() == {"status": "ready"}
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert TOKEN not in stderr and "serving gRPC" in stderr


def test_cli_without_token_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SCRIPTUM_DEVSERVER_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest_scriptum.devserver", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2 and "SCRIPTUM_DEVSERVER_TOKEN" in result.stderr


def test_bad_seed_fails_startup_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "seed" / "scripts" / "demo" / "v1").mkdir(parents=True)
    server = DevServerProcess(data_dir=tmp_path / "data", seed=tmp_path / "seed", token=TOKEN, org=ORG)
    with pytest.raises(DevServerStartError) as exc:
        server.start()
    assert "demo/v1/handler.py: missing" in str(exc.value) and TOKEN not in str(exc.value)
    assert "exited with code 2" in str(exc.value)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_scriptum.devserver",
            "--seed",
            str(tmp_path / "seed"),
            "--token",
            TOKEN,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("scriptum-devserver: malformed seed: ")


def test_kill_9_and_restart_keeps_every_change(tmp_path: Path) -> None:
    data = tmp_path / "data"
    gate = tmp_path / "never"
    first = DevServerProcess(data_dir=data, seed=SEED, token=TOKEN, org=ORG)
    first.start()
    assert TOKEN not in " ".join(first.command())
    with grpc.insecure_channel(first.addresses.grpc, options=CHANNEL_OPTIONS) as channel:
        t = GrpcTransport(channel, AUTH)
        t.call(
            "UpdateScriptEnv",
            pb.UpdateScriptEnvRequest(name="echo", set={"NEW": "1"}, delete=["LEGACY_MODEL"]),
        )
        t.call("SetEnvVar", pb.SetEnvVarRequest(key="REGION", value="eu"))
        t.call(
            "RollbackScript",
            pb.RollbackScriptRequest(
                name="echo", to_version=3, expected_active_version=4, incident_id="INC-1"
            ),
        )
        done = create(t, "echo", 2, {"text": "a"})
        assert settle(t, done).status == pb.THREAD_STATUS_COMPLETED
        paused = create(t, "tools", 1, {"op": "ask"})
        assert settle(t, paused).status == pb.THREAD_STATUS_PAUSED
        running = create(t, "tools", 1, {"op": "wait_file", "path": str(gate)})
        for event in t.stream("WatchThread", pb.WatchThreadRequest(thread_id=running)):
            if event.thread.status == pb.THREAD_STATUS_RUNNING:
                break
    first.kill()

    with DevServerProcess(data_dir=data, seed=SEED, token=TOKEN, org=ORG) as second:
        with grpc.insecure_channel(second.addresses.grpc, options=CHANNEL_OPTIONS) as channel:
            t = GrpcTransport(channel, AUTH)
            script = t.call("GetScript", pb.GetScriptRequest(name="echo"))
            assert script.active_version == 3 and len(script.activation_history) == 5  # not re-seeded
            assert script.activation_history[-1].incident_id == "INC-1"
            assert t.call(
                "GetScriptVersion", pb.GetScriptVersionRequest(name="echo", version=4)
            ).rolled_back_from
            env = t.call("GetScriptEnv", pb.GetScriptEnvRequest(name="echo")).env
            assert dict(env) == {"MODEL": "gpt-4.1", "NEW": "1"}
            assert t.call("GetEnvVar", pb.GetEnvVarRequest(key="REGION")).value == "eu"
            result = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=done))
            assert result.status == pb.THREAD_STATUS_COMPLETED and b'"version": 2' in result.output_data
            assert (
                t.call("GetThread", pb.GetThreadRequest(thread_id=paused)).status == pb.THREAD_STATUS_PAUSED
            )
            interrupted = t.call("GetThread", pb.GetThreadRequest(thread_id=running))
            assert (interrupted.status, interrupted.error_code) == (
                pb.THREAD_STATUS_FAILED,
                "PLATFORM_RESTART",
            )
            assert "restarted" in interrupted.error


def test_graceful_stop_fails_running_threads_as_the_platforms(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with DevServerProcess(data_dir=data, seed=SEED, token=TOKEN, org=ORG) as first:
        with grpc.insecure_channel(first.addresses.grpc, options=CHANNEL_OPTIONS) as channel:
            t = GrpcTransport(channel, AUTH)
            running = create(t, "tools", 1, {"op": "wait_file", "path": str(tmp_path / "never")})
            for event in t.stream("WatchThread", pb.WatchThreadRequest(thread_id=running)):
                if event.thread.status == pb.THREAD_STATUS_RUNNING:
                    break
    with DevServerProcess(data_dir=data, seed=SEED, token=TOKEN, org=ORG) as second:
        with grpc.insecure_channel(second.addresses.grpc, options=CHANNEL_OPTIONS) as channel:
            thread = GrpcTransport(channel, AUTH).call("GetThread", pb.GetThreadRequest(thread_id=running))
            assert (thread.status, thread.error_code) == (pb.THREAD_STATUS_FAILED, "PLATFORM_RESTART")


def test_fault_flags_and_extra_principal_at_start(tmp_path: Path) -> None:
    args = [
        "--fault-error-rate",
        "1",
        "--fault-error-status",
        "PERMISSION_DENIED",
        "--fault-methods",
        "ListScripts",
        "--extra-principal",
        "other-token:globex",
        "--org-name",
        "Acme Corp",
        "--fault-platform-failure",
        "PLATFORM_CAPACITY",
    ]
    with DevServerProcess(
        data_dir=tmp_path / "d", seed=SEED, token=TOKEN, org=ORG, extra_args=args
    ) as server:
        with grpc.insecure_channel(server.addresses.grpc) as channel:
            stub = pb_grpc.ScriptumServiceStub(channel)
            with pytest.raises(grpc.RpcError) as exc:
                stub.ListScripts(pb.ListScriptsRequest(), metadata=AUTH)
            assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
            assert stub.GetScript(pb.GetScriptRequest(name="echo"), metadata=AUTH).active_version == 4
            other = (("authorization", "Bearer other-token"), ("x-organization-id", "globex"))
            with pytest.raises(grpc.RpcError) as exc:
                stub.GetScript(pb.GetScriptRequest(name="echo"), metadata=other)
            assert exc.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
            by_name = (("authorization", f"Bearer {TOKEN}"), ("x-organization-name", "Acme Corp"))
            assert stub.GetScript(pb.GetScriptRequest(name="echo"), metadata=by_name).active_version == 4
            thread = settle(GrpcTransport(channel, AUTH), create(GrpcTransport(channel, AUTH), "echo", 1, {}))
            assert thread.error_code == "PLATFORM_CAPACITY"
