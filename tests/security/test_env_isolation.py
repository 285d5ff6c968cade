"""A handler only ever sees its own run's env: its script's overlay (never another script's) when
env resolution is on, nothing of the tenant or any overlay when it is off — also when runs with
different overlays and flags execute at the same moment, and when warm workers are reused."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from security_kit import AUTH, OVERLAYS, TENANT_ENV

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc


def _expected(script: str, resolve_env: bool) -> dict[str, str]:
    return {**TENANT_ENV, **OVERLAYS[script]} if resolve_env else {}


def _run(
    stub: pb_grpc.ScriptumServiceStub, script: str, resolve_env: bool, event: dict[str, Any]
) -> pb.Thread:
    request = pb.RunThreadRequest(
        name=script, version=1, input_json=json.dumps(event), resolve_env=resolve_env, timeout_seconds=60
    )
    thread = stub.RunThread(request, metadata=AUTH, timeout=90)
    assert thread.status == pb.SUCCEEDED, thread.error
    return thread


def test_concurrent_runs_see_only_their_own_env(stub: pb_grpc.ScriptumServiceStub, tmp_path: Path) -> None:
    runs = [("alpha", True), ("beta", True), ("alpha", False), ("beta", False)]
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    with ThreadPoolExecutor(len(runs)) as pool:
        futures = [
            pool.submit(
                _run,
                stub,
                script,
                env,
                {"barrier": str(barrier), "me": f"{script}-{env}", "parties": len(runs)},
            )
            for script, env in runs
        ]
        threads = [future.result() for future in futures]
    for (script, env), thread in zip(runs, threads, strict=True):
        output = json.loads(thread.output_json)
        assert output["together"] == len(runs)  # all four were running at once
        assert output["env"] == _expected(script, env), (script, env)
        assert list(thread.env_keys) == sorted(_expected(script, env)), (script, env)


def test_reused_workers_forget_the_previous_runs_env(stub: pb_grpc.ScriptumServiceStub) -> None:
    for script, env in [
        ("alpha", True),
        ("alpha", False),
        ("beta", True),
        ("alpha", False),
        ("beta", False),
    ] * 2:
        output = json.loads(_run(stub, script, env, {"x": 1}).output_json)
        assert output["env"] == _expected(script, env), (script, env)
