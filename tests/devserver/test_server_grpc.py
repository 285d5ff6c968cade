"""Every ScriptumService RPC over a real gRPC socket against a seeded DevServer."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import grpc
import pytest
from devserver_kit import AUTH
from google.protobuf import json_format

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver._store import sha256_hex

Stub = pb_grpc.ScriptumServiceStub
Admin = pb_grpc.ScriptumDevAdminStub


def _code(exc: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return exc.value.code()  # type: ignore[attr-defined,no-any-return]


def _details(exc: pytest.ExceptionInfo[grpc.RpcError]) -> str:
    return str(exc.value.details())  # type: ignore[attr-defined]


def test_seed_activation_history_and_versions(stub: Stub) -> None:
    script = stub.GetScript(pb.GetScriptRequest(name="echo"), metadata=AUTH)
    assert (script.active_version, script.latest_version, script.has_draft) == (4, 5, True)
    assert [(a.version, a.from_version, a.kind, a.reason) for a in script.history] == [
        (1, 0, pb.ACTIVATE, "seed"),
        (2, 1, pb.ACTIVATE, "seed"),
        (3, 2, pb.ACTIVATE, "seed"),
        (4, 3, pb.ACTIVATE, "seed"),
    ]
    versions = stub.ListVersions(pb.ListVersionsRequest(name="echo"), metadata=AUTH)
    assert [v.version for v in versions.versions] == [1, 2, 3, 4, 5]
    assert [v.active for v in versions.versions] == [False, False, False, True, False]
    assert versions.active_version == 4 and len(versions.history) == 4
    v2 = stub.GetVersion(pb.GetVersionRequest(name="echo", version=2), metadata=AUTH)
    assert json.loads(v2.output_schema_json) == {"type": "object", "required": ["version"]}
    assert v2.source_sha256 == sha256_hex(
        'def handler(event, context):\n    return {"version": 2, "event": event}\n'
    )
    names = [s.name for s in stub.ListScripts(pb.ListScriptsRequest(), metadata=AUTH).scripts]
    assert names == ["echo", "tools"]


def test_tenant_env_reads_return_hashes_never_values(stub: Stub) -> None:
    entries = stub.ListTenantEnv(pb.ListTenantEnvRequest(), metadata=AUTH).entries
    assert [e.key for e in entries] == ["DB_HOST", "LOG_LEVEL", "OPENAI_API_KEY"]
    key = stub.GetTenantEnv(pb.GetTenantEnvRequest(key="OPENAI_API_KEY"), metadata=AUTH)
    assert key.value_sha256 == sha256_hex("sk-fake-devserver-test")  # quotes stripped by the seed
    assert "sk-fake" not in str(key)
    assert key.source == pb.TENANT
    imported = stub.ImportTenantEnv(
        pb.ImportTenantEnvRequest(values={"NEW_KEY": "v"}, replace=True), metadata=AUTH
    )
    assert [e.key for e in imported.entries] == ["NEW_KEY"]
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetTenantEnv(pb.GetTenantEnvRequest(key="DB_HOST"), metadata=AUTH)
    assert _code(exc) == grpc.StatusCode.NOT_FOUND and "DB_HOST" in _details(exc)


def test_runbook_grpcurl_bodies_parse_verbatim(stub: Stub) -> None:
    get = json_format.Parse(
        '{"name":"invoice-parser"}'.replace("invoice-parser", "echo"), pb.GetScriptEnvRequest()
    )
    before = stub.GetScriptEnv(get, metadata=AUTH)
    assert [e.key for e in before.overlay] == ["LEGACY_MODEL", "MODEL"]
    body = """{ "name":"echo", "set":{"MODEL":"gpt-4.1","TEMPERATURE":"0.0"}, "delete":["LEGACY_MODEL"] }"""
    after = stub.UpdateScriptEnv(json_format.Parse(body, pb.UpdateScriptEnvRequest()), metadata=AUTH)
    assert [(e.key, e.source) for e in after.overlay] == [("MODEL", pb.OVERLAY), ("TEMPERATURE", pb.OVERLAY)]
    effective = {e.key: e.source for e in after.effective}
    assert effective == {
        "DB_HOST": pb.TENANT,
        "LOG_LEVEL": pb.TENANT,
        "OPENAI_API_KEY": pb.TENANT,
        "MODEL": pb.OVERLAY,
        "TEMPERATURE": pb.OVERLAY,
    }
    assert "gpt-4.1" not in str(after)


def test_draft_create_and_publish_does_not_activate(stub: Stub) -> None:
    draft = stub.CreateDraft(
        pb.CreateDraftRequest(
            name="fresh",
            source="def handler(e, c):\n    return 7\n",
            output_schema_json='{"type": "integer"}',
        ),
        metadata=AUTH,
    )
    assert draft.source_sha256 == sha256_hex("def handler(e, c):\n    return 7\n")
    version = stub.PublishDraft(pb.PublishDraftRequest(name="fresh"), metadata=AUTH)
    assert (version.version, version.active, version.output_schema_json) == (1, False, '{"type": "integer"}')
    script = stub.GetScript(pb.GetScriptRequest(name="fresh"), metadata=AUTH)
    assert (script.active_version, script.latest_version, script.has_draft) == (0, 1, False)
    with pytest.raises(grpc.RpcError) as exc:
        stub.PublishDraft(pb.PublishDraftRequest(name="fresh"), metadata=AUTH)
    assert _code(exc) == grpc.StatusCode.FAILED_PRECONDITION and "no draft" in _details(exc)
    seeded = stub.PublishDraft(pb.PublishDraftRequest(name="echo"), metadata=AUTH)
    assert seeded.version == 6


@pytest.mark.parametrize(
    ("request_msg", "needle"),
    [
        (pb.CreateDraftRequest(name="Bad_Name", source="x = 1"), "invalid script name 'Bad_Name'"),
        (pb.CreateDraftRequest(name="ok", source="def handler(:"), "syntax error at handler.py line 1"),
        (
            pb.CreateDraftRequest(name="ok", source="x=1", input_schema_json="{nope"),
            "input_schema_json is not valid JSON",
        ),
        (
            pb.CreateDraftRequest(name="ok", source="x=1", output_schema_json='{"type": 5}'),
            "not a valid JSON Schema",
        ),
    ],
)
def test_bad_drafts_are_invalid_argument(stub: Stub, request_msg: pb.CreateDraftRequest, needle: str) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        stub.CreateDraft(request_msg, metadata=AUTH)
    assert _code(exc) == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in _details(exc)


def test_activate_with_and_without_compare_and_set(stub: Stub) -> None:
    script = stub.ActivateVersion(
        pb.ActivateVersionRequest(name="echo", version=5, reason="promote"), metadata=AUTH
    )
    assert script.active_version == 5 and script.history[-1].reason == "promote"
    with pytest.raises(grpc.RpcError) as exc:
        stub.ActivateVersion(
            pb.ActivateVersionRequest(name="echo", version=3, expected_active_version=4), metadata=AUTH
        )
    assert _code(exc) == grpc.StatusCode.FAILED_PRECONDITION
    assert "active version is 5, not 4" in _details(exc)
    with pytest.raises(grpc.RpcError) as exc:
        stub.ActivateVersion(pb.ActivateVersionRequest(name="echo", version=9), metadata=AUTH)
    assert _code(exc) == grpc.StatusCode.NOT_FOUND and "no version 9" in _details(exc)


def test_rollback_is_compare_and_set_and_recorded(stub: Stub, admin: Admin) -> None:
    rolled = stub.RollbackVersion(
        pb.RollbackVersionRequest(
            name="echo", to_version=3, expected_active_version=4, reason="gate failed", incident_id="INC-1"
        ),
        metadata=AUTH,
    )
    assert rolled.active_version == 3 and list(rolled.rolled_back_from) == [4]
    last = rolled.history[-1]
    assert (last.version, last.from_version, last.kind, last.reason, last.incident_id) == (
        3,
        4,
        pb.ROLLBACK,
        "gate failed",
        "INC-1",
    )
    assert stub.GetVersion(pb.GetVersionRequest(name="echo", version=4), metadata=AUTH).rolled_back_from
    with pytest.raises(grpc.RpcError) as exc:
        stub.RollbackVersion(
            pb.RollbackVersionRequest(name="echo", to_version=2, expected_active_version=4), metadata=AUTH
        )
    assert _code(exc) == grpc.StatusCode.FAILED_PRECONDITION
    assert "active version is 3, not 4: someone else changed it" in _details(exc)
    bad = [
        (
            pb.RollbackVersionRequest(name="echo", to_version=2),
            grpc.StatusCode.INVALID_ARGUMENT,
            "expected_active",
        ),
        (
            pb.RollbackVersionRequest(name="echo", to_version=9, expected_active_version=3),
            grpc.StatusCode.NOT_FOUND,
            "no version 9",
        ),
        (
            pb.RollbackVersionRequest(name="echo", to_version=3, expected_active_version=3),
            grpc.StatusCode.FAILED_PRECONDITION,
            "already the active version",
        ),
    ]
    for request_msg, code, needle in bad:
        with pytest.raises(grpc.RpcError) as exc:
            stub.RollbackVersion(request_msg, metadata=AUTH)
        assert (_code(exc), needle in _details(exc)) == (code, True)
    assert admin.GetStats(pb.GetStatsRequest(), metadata=AUTH).rollbacks_applied == 1


def test_racing_rollbacks_exactly_one_wins(stub: Stub, admin: Admin) -> None:
    barrier = threading.Barrier(8)
    results: list[str] = []
    lock = threading.Lock()

    def rollback() -> None:
        barrier.wait()
        try:
            stub.RollbackVersion(
                pb.RollbackVersionRequest(name="echo", to_version=3, expected_active_version=4), metadata=AUTH
            )
            outcome = "won"
        except grpc.RpcError as error:
            outcome = f"{error.code().name}: {error.details()}"  # type: ignore[attr-defined]
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=rollback) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("won") == 1
    losers = [r for r in results if r != "won"]
    assert losers == ["FAILED_PRECONDITION: active version is 3, not 4: someone else changed it"] * 7
    assert admin.GetStats(pb.GetStatsRequest(), metadata=AUTH).rollbacks_applied == 1


def _run(stub: Stub, **fields: object) -> pb.Thread:
    return stub.RunThread(pb.RunThreadRequest(**fields), metadata=AUTH)  # type: ignore[arg-type]


def test_run_pinned_and_active_version_with_integer_fidelity(stub: Stub) -> None:
    big = 2**70
    pinned = _run(stub, name="echo", version=2, input_json=json.dumps({"n": big, "one": 1, "f": 1.0}))
    assert (pinned.status, pinned.version, pinned.script) == (pb.SUCCEEDED, 2, "echo")
    assert f'"n": {big}' in pinned.output_json
    output = json.loads(pinned.output_json)
    assert output["event"]["n"] == big and isinstance(output["event"]["one"], int)
    assert isinstance(output["event"]["f"], float)
    assert pinned.finished_at.seconds > 0 and pinned.timeout_seconds == 60.0
    active = _run(stub, name="echo", version=0, input_json="null")
    assert active.version == 4 and json.loads(active.output_json)["version"] == 4
    got = stub.GetThread(pb.GetThreadRequest(thread_id=pinned.thread_id), metadata=AUTH)
    assert got.output_json == pinned.output_json and got.status == pb.SUCCEEDED


def test_failing_handler_is_failed_with_text_and_steps(stub: Stub) -> None:
    failed = _run(stub, name="tools", version=1, input_json='{"op": "fail"}')
    assert failed.status == pb.FAILED and "ValueError: bad total" in failed.error
    stepped = _run(stub, name="tools", version=1, input_json='{"op": "steps"}')
    assert stepped.status == pb.FAILED
    assert [(s.name, s.status) for s in stepped.steps] == [("parse", "ok"), ("explode", "error")]
    assert "step failed" in stepped.steps[1].error


def test_platform_deadline_times_out(stub: Stub) -> None:
    thread = _run(
        stub, name="tools", version=1, input_json='{"op": "sleep", "seconds": 30}', timeout_seconds=0.5
    )
    assert thread.status == pb.TIMED_OUT and thread.error
    assert (
        stub.GetThread(pb.GetThreadRequest(thread_id=thread.thread_id), metadata=AUTH).status == pb.TIMED_OUT
    )


def test_env_resolution_on_and_off(stub: Stub) -> None:
    on = _run(stub, name="tools", version=1, input_json='{"op": "env"}', resolve_env=True)
    keys_on = json.loads(on.output_json)["keys"]
    effective = {"DB_HOST", "OPENAI_API_KEY", "LOG_LEVEL", "MODEL", "TEMPERATURE"}
    assert effective <= set(keys_on)
    assert on.env_resolved and list(on.env_keys) == sorted(effective)
    off = _run(stub, name="tools", version=1, input_json='{"op": "env"}', resolve_env=False)
    keys_off = set(json.loads(off.output_json)["keys"])
    assert not keys_off & effective
    assert not off.env_resolved and list(off.env_keys) == []


def test_request_id_runs_once(stub: Stub, admin: Admin) -> None:
    admin.ResetStats(pb.ResetStatsRequest(), metadata=AUTH)
    first = _run(stub, name="echo", version=3, input_json="{}", request_id="req-1")
    second = _run(stub, name="echo", version=3, input_json="{}", request_id="req-1")
    assert first.thread_id == second.thread_id and second.request_id == "req-1"
    stats = admin.GetStats(pb.GetStatsRequest(), metadata=AUTH)
    assert stats.runs_started == 1 and stats.calls["RunThread"] == 2
    with pytest.raises(grpc.RpcError) as exc:
        _run(stub, name="echo", version=3, input_json='{"other": 1}', request_id="req-1")
    assert _code(exc) == grpc.StatusCode.FAILED_PRECONDITION and "req-1" in _details(exc)
    _run(stub, name="echo", version=3, input_json="{}")
    _run(stub, name="echo", version=3, input_json="{}")
    assert admin.GetStats(pb.GetStatsRequest(), metadata=AUTH).runs_started == 3


def test_request_id_waits_for_a_running_thread(stub: Stub, admin: Admin) -> None:
    body = '{"op": "sleep", "seconds": 0.5}'
    queued = _run(stub, name="tools", version=1, input_json=body, request_id="slow", no_wait=True)
    assert queued.status in (pb.QUEUED, pb.RUNNING)
    again = _run(stub, name="tools", version=1, input_json=body, request_id="slow")
    assert again.thread_id == queued.thread_id and again.status == pb.SUCCEEDED
    assert admin.GetStats(pb.GetStatsRequest(), metadata=AUTH).runs_started == 1


def test_no_wait_then_cancel_thread(stub: Stub, admin: Admin) -> None:
    thread = _run(stub, name="tools", version=1, input_json='{"op": "sleep", "seconds": 30}', no_wait=True)
    cancelled = stub.CancelThread(pb.CancelThreadRequest(thread_id=thread.thread_id), metadata=AUTH)
    assert cancelled.status == pb.CANCELLED
    again = stub.CancelThread(pb.CancelThreadRequest(thread_id=thread.thread_id), metadata=AUTH)
    assert again.status == pb.CANCELLED and again.finished_at == cancelled.finished_at
    assert admin.GetStats(pb.GetStatsRequest(), metadata=AUTH).runs_cancelled == 1


def test_client_cancel_cancels_the_run(stub: Stub, admin: Admin) -> None:
    future = stub.RunThread.future(
        pb.RunThreadRequest(
            name="tools", version=1, input_json='{"op": "sleep", "seconds": 30}', request_id="c1"
        ),
        metadata=AUTH,
    )
    # Wait until the server holds the run, then walk away.
    while admin.GetStats(pb.GetStatsRequest(), metadata=AUTH).runs_in_flight == 0:
        threading.Event().wait(0.01)
    future.cancel()
    thread = _run(stub, name="tools", version=1, input_json='{"op": "sleep", "seconds": 30}', request_id="c1")
    assert thread.status == pb.CANCELLED
    assert admin.GetStats(pb.GetStatsRequest(), metadata=AUTH).runs_cancelled == 1


@pytest.mark.parametrize(
    ("fields", "code", "needle"),
    [
        (
            {"name": "echo", "version": 2, "input_json": "{bad"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "input_json is not valid JSON: Expecting property name",
        ),
        ({"name": "echo", "version": 2, "input_json": "NaN"}, grpc.StatusCode.INVALID_ARGUMENT, "NaN"),
        (
            {"name": "echo", "version": 2, "input_json": "1", "timeout_seconds": 3601},
            grpc.StatusCode.INVALID_ARGUMENT,
            "timeout_seconds must be <= 3600",
        ),
        (
            {"name": "echo", "version": 2, "input_json": json.dumps("x" * (1024 * 1024))},
            grpc.StatusCode.INVALID_ARGUMENT,
            "1 MiB",
        ),
        ({"name": "echo", "version": 9, "input_json": "1"}, grpc.StatusCode.NOT_FOUND, "no version 9"),
        (
            {"name": "nope", "version": 1, "input_json": "1"},
            grpc.StatusCode.NOT_FOUND,
            "script 'nope' not found",
        ),
        (
            {"name": "NOPE!", "version": 1, "input_json": "1"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid script name",
        ),
    ],
)
def test_bad_run_requests(stub: Stub, fields: dict[str, object], code: grpc.StatusCode, needle: str) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        _run(stub, **fields)
    assert _code(exc) == code and needle in _details(exc)
    assert _run(stub, name="echo", version=1, input_json="1").status == pb.SUCCEEDED  # still serving


def test_unknown_thread_is_not_found(stub: Stub) -> None:
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetThread(pb.GetThreadRequest(thread_id="nope"), metadata=AUTH)
    assert _code(exc) == grpc.StatusCode.NOT_FOUND and "nope" in _details(exc)


def test_32_runs_in_flight_at_once(stub: Stub, admin: Admin, tmp_path: Path) -> None:
    futures = [
        stub.RunThread.future(
            pb.RunThreadRequest(
                name="tools",
                version=1,
                input_json=json.dumps({"op": "barrier", "dir": str(tmp_path), "i": i, "count": 32}),
            ),
            metadata=AUTH,
        )
        for i in range(32)
    ]
    threads = [f.result() for f in futures]
    assert [t.status for t in threads] == [pb.SUCCEEDED] * 32, [t.error for t in threads]
    assert admin.GetStats(pb.GetStatsRequest(), metadata=AUTH).max_runs_in_flight >= 32
