"""A handler only ever sees its own run's env: its script's overlay (never another script's) when
env resolution is on (``load_env``), nothing of the tenant or any overlay when it is off — also
when runs with different overlays and flags execute at the same moment, when warm workers are
reused, and after a run that tampered with its worker's environment (that worker is retired).
Handler workers serve one organization only."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kit import Platform
from kit.seeds.alpha_beta import HANDLER, OVERLAYS, TENANT_ENV

from pytest_scriptum._proto import scriptum_pb2 as pb


def _expected(script: str, load_env: bool) -> dict[str, str]:
    return {**TENANT_ENV, **OVERLAYS[script]} if load_env else {}


def _run(platform: Platform, script: str, load_env: bool, event: dict[str, Any]) -> tuple[pb.Thread, Any]:
    """CreateThread (v1, pinned) followed to its end; returns the thread and its decoded output."""
    thread, result = platform.run(script, 1, event, load_env=load_env)
    assert thread.status == pb.THREAD_STATUS_COMPLETED, (thread.error_code, thread.error)
    return thread, json.loads(result.output_data)


def test_concurrent_runs_see_only_their_own_env(platform: Platform, tmp_path: Path) -> None:
    runs = [("alpha", True), ("beta", True), ("alpha", False), ("beta", False)]
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    with ThreadPoolExecutor(len(runs)) as pool:
        futures = [
            pool.submit(
                _run,
                platform,
                script,
                env,
                {"barrier": str(barrier), "me": f"{script}-{env}", "parties": len(runs)},
            )
            for script, env in runs
        ]
        finished = [future.result() for future in futures]
    for (script, env), (thread, output) in zip(runs, finished, strict=True):
        assert output["together"] == len(runs)  # all four were running at once
        assert output["env"] == _expected(script, env), (script, env)
        assert list(thread.env_keys) == sorted(_expected(script, env)), (script, env)


def test_reused_workers_forget_the_previous_runs_env(platform: Platform) -> None:
    for script, env in [
        ("alpha", True),
        ("alpha", False),
        ("beta", True),
        ("alpha", False),
        ("beta", False),
    ] * 2:
        _, output = _run(platform, script, env, {"x": 1})
        assert output["env"] == _expected(script, env), (script, env)


def test_a_run_that_tampers_with_its_worker_leaves_nothing_for_the_next(platform: Platform) -> None:
    _, tampering = _run(platform, "alpha", False, {"x": 1, "leave": True})
    # Whoever runs next — the same script, another one, with env or without — sees only its own.
    for script, env in [("alpha", False), ("beta", False), ("beta", True), ("alpha", True)] * 2:
        _, output = _run(platform, script, env, {"x": 1})
        assert output["env"] == _expected(script, env), (script, env)
        assert output["pid"] != tampering["pid"]  # the tampered worker was retired, not reused


def test_workers_serve_one_organization(platform: Platform, other: Platform) -> None:
    # The other organization gets a script of its own running the very same handler.
    name = "their-echo"
    auth = other.metadata
    other.stub.CreateScript(pb.CreateScriptRequest(name=name), metadata=auth, timeout=10)
    draft = pb.SaveScriptDraftRequest(name=name, dsl_content=HANDLER)
    other.stub.SaveScriptDraft(draft, metadata=auth, timeout=10)
    other.stub.CompileScriptDraft(pb.CompileScriptDraftRequest(name=name), metadata=auth, timeout=10)
    other.stub.PublishScriptDraft(pb.PublishScriptDraftRequest(name=name), metadata=auth, timeout=10)
    ours, theirs = set(), set()
    for _ in range(4):  # interleaved, so a shared idle worker would be handed across
        ours.add(_run(platform, "alpha", False, {"x": 1})[1]["pid"])
        theirs.add(_run(other, name, False, {"x": 1})[1]["pid"])
    assert ours and theirs and not ours & theirs
