"""The CLI and DevServerProcess as real child processes: ready line, auth, kill -9 durability, faults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
from devserver_kit import AUTH, ORG, SEED, TOKEN

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


def test_kill_9_and_restart_keeps_every_change(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = DevServerProcess(data_dir=data, seed=SEED, token=TOKEN, org=ORG)
    first.start()
    assert TOKEN not in " ".join(first.command())
    with grpc.insecure_channel(first.addresses.grpc) as channel:
        stub = pb_grpc.ScriptumServiceStub(channel)
        stub.UpdateScriptEnv(
            pb.UpdateScriptEnvRequest(name="echo", set={"NEW": "1"}, delete=["LEGACY_MODEL"]), metadata=AUTH
        )
        stub.RollbackVersion(
            pb.RollbackVersionRequest(name="echo", to_version=3, expected_active_version=4), metadata=AUTH
        )
        thread = stub.RunThread(pb.RunThreadRequest(name="echo", version=2, input_json="[1]"), metadata=AUTH)
    first.kill()

    with DevServerProcess(data_dir=data, seed=SEED, token=TOKEN, org=ORG) as second:
        with grpc.insecure_channel(second.addresses.grpc) as channel:
            stub = pb_grpc.ScriptumServiceStub(channel)
            script = stub.GetScript(pb.GetScriptRequest(name="echo"), metadata=AUTH)
            assert script.active_version == 3 and list(script.rolled_back_from) == [4]
            assert len(script.history) == 5  # not re-seeded
            overlay = stub.GetScriptEnv(pb.GetScriptEnvRequest(name="echo"), metadata=AUTH).overlay
            assert [e.key for e in overlay] == ["MODEL", "NEW"]
            again = stub.GetThread(pb.GetThreadRequest(thread_id=thread.thread_id), metadata=AUTH)
            assert again.status == pb.SUCCEEDED and again.output_json == thread.output_json


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
