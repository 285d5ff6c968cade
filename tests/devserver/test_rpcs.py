"""Every ScriptumService and ScriptumDevAdmin RPC over real sockets, on both transports (`t`)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from kit.transports import SETTLED, CallError, Transport, create, run, settle

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.devserver._program import sha256_hex

_BUNDLE = """### contract.scriptum ###
script "fresh"
input
  name : text
output
  greeting : text
### handler.py ###
def handler(event, context):
    with context.step("greet"):
        word = context.tool("echo", word="hello")["word"]
    return {"greeting": f"{word} {event['name']}"}
"""


def _fails(status: str, needle: str, call: object) -> CallError:
    with pytest.raises(CallError) as exc:
        call()  # type: ignore[operator]
    assert exc.value.status == status, exc.value
    assert needle in exc.value.message, exc.value.message
    return exc.value


def test_health_tools_and_templates(t: Transport) -> None:
    health = t.call("HealthCheck", pb.HealthCheckRequest())
    assert health.status == "SERVING" and "devserver" in health.version and health.uptime_seconds >= 0
    tools = t.call("ListTools", pb.ListToolsRequest()).tools
    assert {tool.name for tool in tools} == {"echo", "file_read", "http_request"}
    assert all(tool.kind == "native" and tool.tool_id and tool.version for tool in tools)
    first = t.call("ListTools", pb.ListToolsRequest(page_size=2))
    rest = t.call("ListTools", pb.ListToolsRequest(page_size=2, page_token=first.next_page_token))
    assert [x.name for x in (*first.tools, *rest.tools)] == [
        x.name for x in tools
    ] and not rest.next_page_token
    templates = t.call("ListTemplates", pb.ListTemplatesRequest()).templates
    assert len(templates) == 3 and all(x.contract.inputs and x.contract.outputs for x in templates)
    one = t.call("GetTemplate", pb.GetTemplateRequest(id="human-approval"))
    assert "context.ask(" in one.dsl_content and "### contract.scriptum ###" in one.dsl_content
    assert [f.name for f in one.contract.outputs] == ["decision", "request"]
    _fails("NOT_FOUND", "'nope'", lambda: t.call("GetTemplate", pb.GetTemplateRequest(id="nope")))


def test_create_list_get_delete_scripts(t: Transport) -> None:
    created = t.call(
        "CreateScript",
        pb.CreateScriptRequest(
            name="fresh",
            description="d",
            tags=["a", "b"],
            labels=[pb.Label(key="team", values=["x"])],
            env={"MODEL": "m1"},
            from_template="receipt-classifier",
        ),
    )
    assert (created.name, created.status, created.draft_status) == (
        "fresh",
        pb.SCRIPT_STATUS_DRAFT,
        pb.VERSION_STATUS_DRAFT,
    )
    assert list(created.tags) == ["a", "b"] and created.labels[0].key == "team"
    assert t.call("GetScriptEnv", pb.GetScriptEnvRequest(name="fresh")).env == {"MODEL": "m1"}
    draft = t.call("GetDraftInfo", pb.GetDraftInfoRequest(name="fresh"))
    assert draft.exists and 'script "receipt-classifier"' in draft.dsl_content
    _fails("ALREADY_EXISTS", "'fresh'", lambda: t.call("CreateScript", pb.CreateScriptRequest(name="fresh")))
    _fails(
        "NOT_FOUND",
        "template 'nope'",
        lambda: t.call("CreateScript", pb.CreateScriptRequest(name="x", from_template="nope")),
    )
    names = [s.name for s in t.call("ListScripts", pb.ListScriptsRequest()).scripts]
    assert names == ["echo", "fresh", "invoice-parser", "tools"]
    tagged = t.call("ListScripts", pb.ListScriptsRequest(tags=["a", "b"])).scripts
    assert [s.name for s in tagged] == ["fresh"]
    page = t.call("ListScripts", pb.ListScriptsRequest(page_size=2))
    rest = t.call("ListScripts", pb.ListScriptsRequest(page_size=2, page_token=page.next_page_token))
    assert [s.name for s in (*page.scripts, *rest.scripts)] == names
    assert t.call("DeleteScript", pb.DeleteScriptRequest(name="fresh")).name == "fresh"
    _fails(
        "NOT_FOUND",
        "script 'fresh' not found",
        lambda: t.call("GetScript", pb.GetScriptRequest(name="fresh")),
    )


def test_draft_save_compile_test_publish(t: Transport) -> None:
    t.call("CreateScript", pb.CreateScriptRequest(name="fresh"))
    assert not t.call("GetDraftInfo", pb.GetDraftInfoRequest(name="fresh")).exists
    _fails(
        "FAILED_PRECONDITION",
        "has no draft",
        lambda: t.call("PublishScriptDraft", pb.PublishScriptDraftRequest(name="fresh")),
    )
    broken = _BUNDLE.replace("  name : text", "  name : txet").replace(
        "def handler(event", "def handler(event,,"
    )
    saved = t.call("SaveScriptDraft", pb.SaveScriptDraftRequest(name="fresh", dsl_content=broken))
    assert saved.status == pb.VERSION_STATUS_DRAFT and saved.content_sha256 == sha256_hex(broken)
    _fails(
        "FAILED_PRECONDITION",
        "is DRAFT, not COMPILED",
        lambda: t.call("PublishScriptDraft", pb.PublishScriptDraftRequest(name="fresh")),
    )
    failed = t.call("CompileScriptDraft", pb.CompileScriptDraftRequest(name="fresh"))
    assert not failed.success
    where = {(d.file, d.line) for d in failed.diagnostics}
    assert ("contract.scriptum", 4) in where and ("handler.py", 8) in where, failed.diagnostics
    assert all(d.column >= 1 and d.severity == pb.DIAGNOSTIC_SEVERITY_ERROR for d in failed.diagnostics)
    assert t.call("GetDraftInfo", pb.GetDraftInfoRequest(name="fresh")).status == pb.VERSION_STATUS_FAILED
    _fails(
        "FAILED_PRECONDITION",
        "failed to compile",
        lambda: t.call("TestScriptDraft", pb.TestScriptDraftRequest(name="fresh", input_json="{}")),
    )

    t.call("SaveScriptDraft", pb.SaveScriptDraftRequest(name="fresh", dsl_content=_BUNDLE))
    compiled = t.call("CompileScriptDraft", pb.CompileScriptDraftRequest(name="fresh"))
    assert compiled.success and list(compiled.tools_required) == ["echo"] and compiled.ir_yaml
    assert [f.name for f in compiled.contract.inputs] == ["name"] and json.loads(compiled.ast_json)["handler"]
    info = t.call("GetDraftInfo", pb.GetDraftInfoRequest(name="fresh"))
    assert info.status == pb.VERSION_STATUS_COMPILED and list(info.tools_required) == ["echo"]

    test_id = t.call(
        "TestScriptDraft",
        pb.TestScriptDraftRequest(name="fresh", input_json='{"name": "ada"}', timeout="30s"),
    ).thread_id
    thread = settle(t, test_id)
    assert (thread.status, thread.draft, thread.version) == (pb.THREAD_STATUS_COMPLETED, True, 0)
    result = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=test_id))
    assert json.loads(result.output_data) == {"greeting": "hello ada"}
    assert [(s.path, s.name, s.tool) for s in result.steps] == [("1", "greet", ""), ("1.0", "echo", "echo")]
    _fails(
        "INVALID_ARGUMENT",
        "field 'name'",
        lambda: t.call("TestScriptDraft", pb.TestScriptDraftRequest(name="fresh", input_json='{"name": 1}')),
    )

    published = t.call("PublishScriptDraft", pb.PublishScriptDraftRequest(name="fresh"))
    assert (published.version.version, published.version.status, published.previous_active_version) == (
        1,
        pb.VERSION_STATUS_ACTIVE,
        0,
    )
    assert not t.call("GetDraftInfo", pb.GetDraftInfoRequest(name="fresh")).exists
    code = t.call("GetScriptCode", pb.GetScriptCodeRequest(name="fresh", version=1))
    assert code.dsl_content == _BUNDLE and code.version == 1
    # Publishing the next draft activates it; the previous version becomes SUPERSEDED.
    t.call("SaveScriptDraft", pb.SaveScriptDraftRequest(name="fresh", dsl_content=_BUNDLE + "\n# v2\n"))
    t.call("CompileScriptDraft", pb.CompileScriptDraftRequest(name="fresh"))
    second = t.call("PublishScriptDraft", pb.PublishScriptDraftRequest(name="fresh"))
    assert (second.version.version, second.previous_active_version) == (2, 1)
    statuses = [
        v.status for v in t.call("ListScriptVersions", pb.ListScriptVersionsRequest(name="fresh")).versions
    ]
    assert statuses == [pb.VERSION_STATUS_SUPERSEDED, pb.VERSION_STATUS_ACTIVE]
    history = t.call("GetScript", pb.GetScriptRequest(name="fresh")).activation_history
    assert [(a.version, a.from_version, a.kind) for a in history] == [
        (1, 0, pb.ACTIVATION_KIND_PUBLISH),
        (2, 1, pb.ACTIVATION_KIND_PUBLISH),
    ]


def test_save_draft_rejects_ir_and_empty(t: Transport) -> None:
    _fails(
        "INVALID_ARGUMENT",
        "ir_yaml",
        lambda: t.call("SaveScriptDraft", pb.SaveScriptDraftRequest(name="echo", ir_yaml="steps: []")),
    )
    _fails(
        "INVALID_ARGUMENT",
        "dsl_content is required",
        lambda: t.call("SaveScriptDraft", pb.SaveScriptDraftRequest(name="echo")),
    )
    _fails(
        "NOT_FOUND",
        "script 'ghost' not found",
        lambda: t.call("SaveScriptDraft", pb.SaveScriptDraftRequest(name="ghost", dsl_content="x = 1")),
    )


def test_seeded_script_versions_and_code(t: Transport) -> None:
    script = t.call("GetScript", pb.GetScriptRequest(name="echo"))
    assert (script.active_version, script.latest_version, script.status, script.draft_status) == (
        4,
        5,
        pb.SCRIPT_STATUS_ACTIVE,
        pb.VERSION_STATUS_COMPILED,
    )
    assert [(a.sequence, a.version, a.from_version, a.kind) for a in script.activation_history] == [
        (1, 1, 0, pb.ACTIVATION_KIND_PUBLISH),
        (2, 2, 1, pb.ACTIVATION_KIND_PUBLISH),
        (3, 3, 2, pb.ACTIVATION_KIND_PUBLISH),
        (4, 4, 3, pb.ACTIVATION_KIND_PUBLISH),
    ]
    versions = t.call("ListScriptVersions", pb.ListScriptVersionsRequest(name="echo")).versions
    assert [(v.version, v.status) for v in versions] == [
        (1, pb.VERSION_STATUS_SUPERSEDED),
        (2, pb.VERSION_STATUS_SUPERSEDED),
        (3, pb.VERSION_STATUS_SUPERSEDED),
        (4, pb.VERSION_STATUS_ACTIVE),
        (5, pb.VERSION_STATUS_COMPILED),
    ]
    v2 = t.call("GetScriptVersion", pb.GetScriptVersionRequest(name="echo", version=2))
    assert [(f.name, f.required) for f in v2.contract.inputs] == [("text", True), ("count", False)]
    assert v2.contract.inputs[1].default_value_json == "1" and not v2.rolled_back_from
    active_code = t.call("GetScriptCode", pb.GetScriptCodeRequest(name="echo"))
    assert active_code.version == 4 and '"version": 4' in active_code.dsl_content
    v2_code = t.call("GetScriptCode", pb.GetScriptCodeRequest(name="echo", version=2))
    assert v2_code.dsl_content.startswith('### contract.scriptum ###\nscript "echo"')
    _fails(
        "NOT_FOUND",
        "no version 9 (latest is 5)",
        lambda: t.call("GetScriptVersion", pb.GetScriptVersionRequest(name="echo", version=9)),
    )
    _fails(
        "INVALID_ARGUMENT",
        "version must be >= 1",
        lambda: t.call("GetScriptVersion", pb.GetScriptVersionRequest(name="echo", version=0)),
    )


def test_rollback_script_cas_reason_and_history(t: Transport) -> None:
    request = pb.RollbackScriptRequest(
        name="echo",
        to_version=3,
        expected_active_version=4,
        reason="gate failed",
        incident_id="INC-1",
        rollback_id="rb-1",
    )
    rolled = t.call("RollbackScript", request)
    assert (rolled.previous_active_version, rolled.active_version, rolled.script.active_version) == (4, 3, 3)
    last = rolled.script.activation_history[-1]
    assert (last.version, last.from_version, last.kind, last.reason, last.incident_id, last.rollback_id) == (
        3,
        4,
        pb.ACTIVATION_KIND_ROLLBACK,
        "gate failed",
        "INC-1",
        "rb-1",
    )
    assert t.call("GetScriptVersion", pb.GetScriptVersionRequest(name="echo", version=4)).rolled_back_from
    # The same rollback id again (a retry after an ambiguous outcome) is answered from the history.
    again = t.call("RollbackScript", request)
    assert again.active_version == 3 and len(again.script.activation_history) == 5
    _fails(
        "FAILED_PRECONDITION",
        "active version is 3, not 4: someone else changed it",
        lambda: t.call(
            "RollbackScript", pb.RollbackScriptRequest(name="echo", to_version=2, expected_active_version=4)
        ),
    )
    _fails(
        "FAILED_PRECONDITION",
        "already the active version",
        lambda: t.call("RollbackScript", pb.RollbackScriptRequest(name="echo", to_version=3)),
    )
    _fails(
        "NOT_FOUND",
        "no version 9",
        lambda: t.call("RollbackScript", pb.RollbackScriptRequest(name="echo", to_version=9)),
    )
    # to_version 0: the version active before the current one (the CLI's --to 0).
    previous = t.call("RollbackScript", pb.RollbackScriptRequest(name="echo", to_version=0))
    assert (previous.previous_active_version, previous.active_version) == (3, 4)
    t.call("CreateScript", pb.CreateScriptRequest(name="fresh"))
    _fails(
        "FAILED_PRECONDITION",
        "no previously active version",
        lambda: t.call("RollbackScript", pb.RollbackScriptRequest(name="fresh")),
    )


def test_rollbacks_race_exactly_one_wins(t: Transport) -> None:
    barrier = threading.Barrier(6)
    outcomes: list[str] = []
    lock = threading.Lock()

    def rollback() -> None:
        barrier.wait()
        try:
            t.call(
                "RollbackScript",
                pb.RollbackScriptRequest(name="echo", to_version=3, expected_active_version=4),
            )
            outcome = "won"
        except CallError as error:
            outcome = f"{error.status}: {error.message}"
        with lock:
            outcomes.append(outcome)

    workers = [threading.Thread(target=rollback) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert outcomes.count("won") == 1
    assert sorted(set(outcomes) - {"won"}) == [
        "FAILED_PRECONDITION: active version is 3, not 4: someone else changed it"
    ]
    assert t.call("GetStats", pb.GetStatsRequest()).rollbacks_applied == 1


def test_create_thread_returns_at_once_then_runs(t: Transport, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    response = t.call(
        "CreateThread",
        pb.CreateThreadRequest(
            script_name="tools",
            version=1,
            input_json=json.dumps({"op": "wait_file", "path": str(gate)}),
            load_env=True,
            metadata={"team": "qa"},
            timeout="60s",
        ),
    )
    assert response.status in (pb.THREAD_STATUS_PENDING, pb.THREAD_STATUS_RUNNING)
    assert (response.script_name, response.version) == ("tools", 1) and response.thread_id.startswith("thr_")
    running = t.call("GetThread", pb.GetThreadRequest(thread_id=response.thread_id))
    assert running.status in (pb.THREAD_STATUS_PENDING, pb.THREAD_STATUS_RUNNING)
    assert running.finished_at_ms == 0 and running.created_at_ms > 0
    gate.touch()
    thread = settle(t, response.thread_id)
    assert thread.status == pb.THREAD_STATUS_COMPLETED and thread.error_code == ""
    got = t.call("GetThread", pb.GetThreadRequest(thread_id=response.thread_id))
    assert got.started_at_ms >= got.created_at_ms and got.finished_at_ms >= got.started_at_ms
    assert (
        got.load_env,
        dict(got.metadata),
        got.current_step_path,
        got.current_step_name,
        got.total_steps,
    ) == (
        True,
        {"team": "qa"},
        "1",
        "waiting",
        1,
    )
    assert list(got.env_keys) == ["DB_HOST", "LOG_LEVEL", "MODEL", "OPENAI_API_KEY", "TEMPERATURE"]
    assert got.execution_mode == pb.EXECUTION_MODE_CLOUD
    active = create(t, "echo", 0, {"x": 1})
    assert settle(t, active).version == 4


def test_input_contract_is_enforced_at_create_thread(t: Transport) -> None:
    _fails("INVALID_ARGUMENT", "'text' is a required property", lambda: create(t, "echo", 2, {}))
    _fails("INVALID_ARGUMENT", "field 'text'", lambda: create(t, "echo", 2, {"text": ""}))
    _fails("INVALID_ARGUMENT", "'extra'", lambda: create(t, "echo", 2, {"text": "a", "extra": 1}))
    _fails("INVALID_ARGUMENT", "input_json does not match", lambda: create(t, "echo", 2, [1]))
    thread, output = run(t, "echo", 2, {"text": "hi"})
    assert thread.status == pb.THREAD_STATUS_COMPLETED
    assert output == {"version": 2, "event": {"text": "hi", "count": 1}}  # the default filled in
    big = 2**70
    _, echoed = run(t, "echo", 3, {"n": big, "f": 1.0})
    assert echoed["event"]["n"] == big and isinstance(echoed["event"]["f"], float)


def test_request_id_runs_once(t: Transport) -> None:
    t.call("ResetStats", pb.ResetStatsRequest())
    meta = {"scriptum.request_id": "req-1"}
    first = create(t, "echo", 3, {"a": 1}, metadata=meta)
    second = create(t, "echo", 3, {"a": 1}, metadata=meta)
    assert first == second
    _fails("FAILED_PRECONDITION", "'req-1'", lambda: create(t, "echo", 3, {"a": 2}, metadata=meta))
    settle(t, first)
    stats = t.call("GetStats", pb.GetStatsRequest())
    assert stats.runs_started == 1 and stats.calls["CreateThread"] == 3


def test_list_threads_filters_and_pages(t: Transport, tmp_path: Path) -> None:
    done = [create(t, "echo", 1, {"i": i}) for i in range(3)]
    for thread_id in done:
        settle(t, thread_id)
    failed = create(t, "tools", 1, {"op": "fail"})
    settle(t, failed)
    gate = tmp_path / "go"
    running = create(t, "tools", 1, {"op": "wait_file", "path": str(gate)})
    every = t.call("ListThreads", pb.ListThreadsRequest()).threads
    assert [x.thread_id for x in every] == [running, failed, *reversed(done)]  # newest first
    echo = t.call("ListThreads", pb.ListThreadsRequest(script_name_filter="echo")).threads
    assert {x.thread_id for x in echo} == set(done)
    only_failed = t.call("ListThreads", pb.ListThreadsRequest(status_filter=pb.THREAD_STATUS_FAILED)).threads
    assert [x.thread_id for x in only_failed] == [failed] and only_failed[0].error_code == "SCRIPT_ERROR"
    unfinished = [
        *t.call("ListThreads", pb.ListThreadsRequest(status_filter=pb.THREAD_STATUS_PENDING)).threads,
        *t.call("ListThreads", pb.ListThreadsRequest(status_filter=pb.THREAD_STATUS_RUNNING)).threads,
    ]
    assert [x.thread_id for x in unfinished] == [running]
    seen: list[str] = []
    token = ""
    while True:
        page = t.call("ListThreads", pb.ListThreadsRequest(page_size=2, page_token=token))
        seen += [x.thread_id for x in page.threads]
        token = page.next_page_token
        if not token:
            break
    assert seen == [x.thread_id for x in every]
    gate.touch()
    settle(t, running)


def test_cancel_thread(t: Transport, tmp_path: Path) -> None:
    thread_id = create(t, "tools", 1, {"op": "wait_file", "path": str(tmp_path / "never")})
    for event in t.stream("WatchThread", pb.WatchThreadRequest(thread_id=thread_id)):
        if event.thread.current_step_path == "1":
            break  # the handler is inside its step (the first event's snapshot may already say so)
    cancelled = t.call("CancelThread", pb.CancelThreadRequest(thread_id=thread_id))
    assert (cancelled.status, cancelled.error_code) == (pb.THREAD_STATUS_CANCELLED, "CANCELLED_BY_CALLER")
    assert cancelled.finished_at_ms > 0
    again = t.call("CancelThread", pb.CancelThreadRequest(thread_id=thread_id))
    assert again.status == pb.THREAD_STATUS_CANCELLED and again.finished_at_ms == cancelled.finished_at_ms
    steps = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=thread_id)).steps
    assert [(s.path, s.status) for s in steps] == [("1", pb.STEP_STATUS_CANCELLED)]
    paused = create(t, "tools", 1, {"op": "ask"})
    assert settle(t, paused).status == pb.THREAD_STATUS_PAUSED
    gone = t.call("CancelThread", pb.CancelThreadRequest(thread_id=paused))
    assert gone.status == pb.THREAD_STATUS_CANCELLED and not gone.HasField("pending_ask")
    finished = create(t, "echo", 1, {})
    settle(t, finished)
    assert (
        t.call("CancelThread", pb.CancelThreadRequest(thread_id=finished)).status
        == pb.THREAD_STATUS_COMPLETED
    )


@pytest.mark.parametrize(
    ("event", "timeout", "status", "code", "needle"),
    [
        ({"op": "fail"}, "", pb.THREAD_STATUS_FAILED, "SCRIPT_ERROR", "ValueError: bad total"),
        ({"op": "sleep", "seconds": 30}, "0.5s", pb.THREAD_STATUS_FAILED, "SCRIPT_DEADLINE", "0.5s deadline"),
        ({"op": "not_json"}, "", pb.THREAD_STATUS_FAILED, "SCRIPT_OUTPUT_INVALID", "not JSON"),
        ({"op": "crash"}, "", pb.THREAD_STATUS_FAILED, "PLATFORM_RUNTIME_CRASH", "exited with code 3"),
    ],
    ids=["raised", "deadline", "not-json", "crash"],
)
def test_failures_carry_their_error_code(
    t: Transport, event: object, timeout: str, status: int, code: str, needle: str
) -> None:
    thread = settle(t, create(t, "tools", 1, event, timeout=timeout))
    assert (thread.status, thread.error_code) == (status, code)
    assert needle in thread.error and thread.status in SETTLED


def test_result_steps_details_logs_and_yields(t: Transport) -> None:
    failed = settle(t, create(t, "tools", 1, {"op": "steps"}))
    assert failed.status == pb.THREAD_STATUS_FAILED
    result = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=failed.thread_id))
    assert [(s.path, s.name, s.status) for s in result.steps] == [
        ("1", "parse", pb.STEP_STATUS_COMPLETED),
        ("1.0", "tokenize", pb.STEP_STATUS_COMPLETED),
        ("1.1", "validate", pb.STEP_STATUS_COMPLETED),
        ("1.1.0", "deep", pb.STEP_STATUS_COMPLETED),
        ("2", "explode", pb.STEP_STATUS_FAILED),
    ]
    assert "RuntimeError: step failed" in result.steps[-1].error and not result.step_details
    detail = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=failed.thread_id, step_path="1.0"))
    assert [(d.summary.path, json.loads(d.output_json)) for d in detail.step_details] == [
        ("1.0", {"tokens": 3})
    ]
    parse = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=failed.thread_id, step_path="1"))
    assert list(parse.step_details[0].logs) == ["parsing"]
    assert not t.call(
        "GetThreadResult", pb.GetThreadResultRequest(thread_id=failed.thread_id, step_path="1.9")
    ).step_details

    yielded = settle(t, create(t, "tools", 1, {"op": "yield", "n": 4}))
    full = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=yielded.thread_id))
    assert [json.loads(v) for v in full.yielded_values] == [{"i": i} for i in range(4)]
    assert (full.total_yielded, full.yields_truncated, full.output_total_bytes) == (
        4,
        False,
        len(full.output_data),
    )
    only = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=yielded.thread_id, output_only=True))
    assert not only.steps and only.output_data == full.output_data
    meta = t.call(
        "GetThreadResult", pb.GetThreadResultRequest(thread_id=yielded.thread_id, metadata_only=True)
    )
    assert meta.output_data == b"" and meta.output_total_bytes == len(full.output_data)
    assert (meta.thread_id, meta.status, meta.script_name, meta.version) == (
        yielded.thread_id,
        pb.THREAD_STATUS_COMPLETED,
        "tools",
        1,
    )


def test_tenant_env_rpcs_return_values(t: Transport) -> None:
    listed = t.call("ListEnvVars", pb.ListEnvVarsRequest()).vars
    assert {(v.key, v.value) for v in listed} == {
        ("DB_HOST", "db.test.invalid"),
        ("LOG_LEVEL", "info"),
        ("OPENAI_API_KEY", "sk-fake-devserver-test"),
    }
    page = t.call("ListEnvVars", pb.ListEnvVarsRequest(page_size=2))
    rest = t.call("ListEnvVars", pb.ListEnvVarsRequest(page_size=2, page_token=page.next_page_token))
    assert [v.key for v in (*page.vars, *rest.vars)] == ["DB_HOST", "LOG_LEVEL", "OPENAI_API_KEY"]
    assert t.call("GetEnvVar", pb.GetEnvVarRequest(key="DB_HOST")).value == "db.test.invalid"
    set_var = t.call("SetEnvVar", pb.SetEnvVarRequest(key="REGION", value="eu"))
    assert (set_var.key, set_var.value) == ("REGION", "eu") and set_var.updated_at_ms > 0
    imported = t.call(
        "ImportEnvVars",
        pb.ImportEnvVarsRequest(
            content="# prod\nDB_HOST=db.prod\n\nexport QUOTED='a b'\n", vars={"EXTRA": "1"}
        ),
    )
    assert (imported.imported, list(imported.keys)) == (3, ["DB_HOST", "EXTRA", "QUOTED"])
    assert t.call("GetEnvVar", pb.GetEnvVarRequest(key="QUOTED")).value == "a b"
    assert t.call("GetEnvVar", pb.GetEnvVarRequest(key="DB_HOST")).value == "db.prod"  # overwritten
    _fails(
        "INVALID_ARGUMENT",
        "content:2: expected KEY=VALUE",
        lambda: t.call("ImportEnvVars", pb.ImportEnvVarsRequest(content="A=1\nsecret-looking line\n")),
    )
    assert t.call("DeleteEnvVar", pb.DeleteEnvVarRequest(key="REGION")).deleted
    assert not t.call("DeleteEnvVar", pb.DeleteEnvVarRequest(key="REGION")).deleted
    _fails("NOT_FOUND", "'REGION'", lambda: t.call("GetEnvVar", pb.GetEnvVarRequest(key="REGION")))
    _fails(
        "INVALID_ARGUMENT",
        "invalid env key",
        lambda: t.call("SetEnvVar", pb.SetEnvVarRequest(key="1X", value="")),
    )


def test_script_env_overlay_and_empty_defers(t: Transport) -> None:
    before = t.call("GetScriptEnv", pb.GetScriptEnvRequest(name="echo"))
    assert (before.name, dict(before.env)) == ("echo", {"LEGACY_MODEL": "gpt-3", "MODEL": "gpt-4.1"})
    after = t.call(
        "UpdateScriptEnv",
        pb.UpdateScriptEnvRequest(
            name="echo", set={"MODEL": "gpt-4.1", "TEMPERATURE": "0.0"}, delete=["LEGACY_MODEL"]
        ),
    )
    assert dict(after.env) == {"MODEL": "gpt-4.1", "TEMPERATURE": "0.0"}
    _fails(
        "INVALID_ARGUMENT",
        "in both 'set' and 'delete'",
        lambda: t.call(
            "UpdateScriptEnv", pb.UpdateScriptEnvRequest(name="echo", set={"A": "1"}, delete=["A"])
        ),
    )
    # An empty overlay value defers to the tenant value; without a tenant value the key is absent.
    t.call("UpdateScriptEnv", pb.UpdateScriptEnvRequest(name="tools", set={"DB_HOST": "", "NOWHERE": ""}))
    thread, output = run(t, "tools", 1, {"op": "env"}, load_env=True)
    assert output["values"]["DB_HOST"] == "db.test.invalid" and "NOWHERE" not in output["values"]
    assert output["values"]["MODEL"] == "tools-model" and list(thread.env_keys) == output["keys"]
    assert set(output["keys"]) <= set(output["os_keys"])
    off_thread, off = run(t, "tools", 1, {"op": "env"}, load_env=False)
    assert off["keys"] == [] and "DB_HOST" not in off["os_keys"] and list(off_thread.env_keys) == []


def test_list_artifacts_is_unimplemented(t: Transport) -> None:
    thread_id = create(t, "echo", 1, {})
    _fails(
        "UNIMPLEMENTED",
        "documents it as Unimplemented",
        lambda: t.call("ListArtifacts", pb.ListArtifactsRequest(thread_id=thread_id)),
    )


@pytest.mark.parametrize(
    ("fields", "status", "needle"),
    [
        ({"script_name": "echo", "version": 1, "input_json": "{bad"}, "INVALID_ARGUMENT", "not valid JSON"),
        ({"script_name": "echo", "version": 1, "input_json": "NaN"}, "INVALID_ARGUMENT", "NaN"),
        (
            {"script_name": "echo", "version": 1, "timeout": "10 minutes"},
            "INVALID_ARGUMENT",
            "not a duration",
        ),
        (
            {"script_name": "echo", "version": 1, "timeout": "2h"},
            "INVALID_ARGUMENT",
            "over the limit of 3600s",
        ),
        ({"script_name": "echo", "version": 1, "timeout": "0s"}, "INVALID_ARGUMENT", "greater than zero"),
        ({"script_name": "echo", "version": -1}, "INVALID_ARGUMENT", "version must be >= 1"),
        ({"script_name": "echo", "version": 9}, "NOT_FOUND", "no version 9"),
        ({"script_name": "nope", "version": 1}, "NOT_FOUND", "script 'nope' not found"),
        ({"script_name": "NOPE!", "version": 1}, "INVALID_ARGUMENT", "invalid script name"),
        (
            {"script_name": "echo", "version": 1, "input_json": json.dumps("x" * (1 << 20))},
            "INVALID_ARGUMENT",
            "1 MiB",
        ),
    ],
)
def test_bad_create_thread_requests(
    t: Transport, fields: dict[str, object], status: str, needle: str
) -> None:
    _fails(status, needle, lambda: t.call("CreateThread", pb.CreateThreadRequest(**fields)))  # type: ignore[arg-type]
    assert settle(t, create(t, "echo", 1, {})).status == pb.THREAD_STATUS_COMPLETED  # still serving


def test_unknown_thread_is_not_found_everywhere(t: Transport) -> None:
    for method, request in [
        ("GetThread", pb.GetThreadRequest(thread_id="thr_nope")),
        ("GetThreadResult", pb.GetThreadResultRequest(thread_id="thr_nope")),
        ("CancelThread", pb.CancelThreadRequest(thread_id="thr_nope")),
        ("ResumeThread", pb.ResumeThreadRequest(thread_id="thr_nope", step_input_override_json="1")),
    ]:
        _fails("NOT_FOUND", "thr_nope", lambda m=method, r=request: t.call(m, r))  # type: ignore[misc]
    for method, request in [
        ("WatchThread", pb.WatchThreadRequest(thread_id="thr_nope")),
        ("WatchStep", pb.WatchStepRequest(thread_id="thr_nope", step_path="1")),
        ("StreamThreadResult", pb.StreamThreadResultRequest(thread_id="thr_nope")),
        ("StreamStepResult", pb.StreamStepResultRequest(thread_id="thr_nope")),
    ]:
        _fails("NOT_FOUND", "thr_nope", lambda m=method, r=request: list(t.stream(m, r)))  # type: ignore[misc]


def test_admin_faults_and_stats(t: Transport) -> None:
    t.call("ResetStats", pb.ResetStatsRequest())
    faults = t.call("SetFaults", pb.Faults(error_next=1, error_status="unavailable", methods=["GetScript"]))
    assert (faults.error_next, faults.error_status) == (1, "UNAVAILABLE")
    assert t.call("GetFaults", pb.GetFaultsRequest()).error_next == 1
    _fails(
        "UNAVAILABLE",
        "injected fault (error_next) on GetScript",
        lambda: t.call("GetScript", pb.GetScriptRequest(name="echo")),
    )
    assert t.call("GetScript", pb.GetScriptRequest(name="echo")).active_version == 4
    _fails(
        "INVALID_ARGUMENT",
        "platform_failure",
        lambda: t.call("SetFaults", pb.Faults(platform_failure="SCRIPT_ERROR")),
    )
    stats = t.call("GetStats", pb.GetStatsRequest())
    assert stats.calls["GetScript"] == 2 and "SetFaults" not in stats.calls
    reset = t.call("ResetStats", pb.ResetStatsRequest())
    assert dict(reset.calls) == {} and reset.runs_started == 0
