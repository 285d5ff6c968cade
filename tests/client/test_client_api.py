"""Every ScriptumClient method against the embedded server, over both transports."""

from __future__ import annotations

import json
import uuid

import pytest
from kit import OTHER_ORG, OTHER_TOKEN, TOKEN
from kit import Platform as Admin
from kit.scripted import ClientFactory, settings_for

from pytest_scriptum.client import GrpcClient, HttpClient, ScriptumError
from pytest_scriptum.client._base import ClientBase
from pytest_scriptum.client._contract import EXTENSIONS

HANDLER = "def handler(event, context):\n    return {'ok': True, 'event': event}\n"


def fresh_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def test_api_info_says_how_the_server_is_spoken_to(client: ClientBase, transport: str) -> None:
    info = client.api_info()
    assert info.problems == () and info.fallbacks == ()
    assert info.extensions == EXTENSIONS
    assert info.descriptors == ("reflection" if transport == "grpc" else "bundled")


def test_health(client: ClientBase) -> None:
    health = client.health()
    assert health.status == "SERVING" and health.version and health.uptime_seconds >= 0


def test_scripts_and_versions(client: ClientBase) -> None:
    assert "echo" in [s.name for s in client.list_scripts()]
    script = client.get_script("echo")
    assert (script.active_version, script.latest_version, script.status) == (2, 3, "ACTIVE")
    assert script.history is not None
    assert [(a.version, a.from_version, a.kind) for a in script.history] == [
        (1, 0, "PUBLISH"),
        (2, 1, "PUBLISH"),
    ]
    versions = client.list_script_versions("echo")
    assert [(v.version, v.status) for v in versions] == [(1, "SUPERSEDED"), (2, "ACTIVE"), (3, "COMPILED")]
    v1 = client.get_script_version("echo", 1)
    assert (v1.name, v1.version, v1.rolled_back_from) == ("echo", 1, False)
    outputs = {f["name"]: f for f in v1.contract["outputs"]}
    assert outputs["version"]["type"]["kind"] == "TYPE_KIND_INTEGER" and outputs["version"]["required"]
    assert outputs["version"]["constraints"] == {"minimum": 1.0, "maximum": 3.0}
    assert not outputs["region"].get("required", False)
    assert len(v1.content_sha256) == 64


def test_create_draft_compile_publish_and_delete(client: ClientBase) -> None:
    name = fresh_name()
    created = client.create_script(name, description="made by a test", env={"MODE": "draft"})
    assert (created.name, created.active_version, created.latest_version) == (name, 0, 0)
    assert client.get_draft_info(name).exists is False
    saved = client.save_script_draft(name, dsl_content=HANDLER)
    assert saved.exists and saved.status == "DRAFT" and len(saved.content_sha256) == 64
    compiled = client.compile_script_draft(name)
    assert compiled.status == "COMPILED" and compiled.diagnostics == ()
    assert client.get_draft_info(name).status == "COMPILED"
    first = client.publish_script_draft(name)
    assert (first.version.version, first.version.status, first.previous_active_version) == (1, "ACTIVE", 0)
    client.save_script_draft(name, dsl_content=HANDLER.replace("True", "False"))
    client.compile_script_draft(name)
    second = client.publish_script_draft(name)
    assert (second.version.version, second.previous_active_version) == (2, 1)
    assert [v.status for v in client.list_script_versions(name)] == ["SUPERSEDED", "ACTIVE"]
    assert client.get_script_env(name).env == {"MODE": "draft"}
    client.delete_script(name)
    with pytest.raises(ScriptumError) as info:
        client.get_script(name)
    assert info.value.code == "NOT_FOUND"


def test_a_draft_that_does_not_compile_has_diagnostics(client: ClientBase) -> None:
    name = fresh_name()
    client.create_script(name)
    client.save_script_draft(name, dsl_content="def handler(event, context):\n    return (\n")
    compiled = client.compile_script_draft(name)
    assert compiled.status == "FAILED" and compiled.diagnostics
    assert compiled.diagnostics[0].severity == "ERROR" and compiled.diagnostics[0].line >= 1


def test_rollback_with_compare_and_set_and_history(client: ClientBase, admin: Admin) -> None:
    name = fresh_name()
    client.create_script(name)
    for body in ("1", "2", "3"):
        client.save_script_draft(name, dsl_content=HANDLER.replace("True", body))
        client.compile_script_draft(name)
        client.publish_script_draft(name)
    rolled = client.rollback_script(
        name, 2, expected_active_version=3, reason="gate failed", incident_id="INC-42", rollback_id="rb-1"
    )
    assert (rolled.previous_active_version, rolled.active_version, rolled.script.active_version) == (3, 2, 2)
    assert rolled.script.rolled_back_from == (3,)
    assert rolled.script.history is not None
    last = rolled.script.history[-1]
    assert (last.kind, last.version, last.from_version, last.reason, last.incident_id, last.rollback_id) == (
        "ROLLBACK",
        2,
        3,
        "gate failed",
        "INC-42",
        "rb-1",
    )
    assert client.get_script_version(name, 3).rolled_back_from is True

    admin.reset()
    with pytest.raises(ScriptumError) as info:
        client.rollback_script(name, 1, expected_active_version=3, reason="again")
    assert info.value.is_conflict and "gave up" not in str(info.value)
    assert admin.calls("RollbackScript") == 1  # a conflict is not retried
    previous = client.rollback_script(name, 0)  # 0 = the previously active version
    assert (previous.previous_active_version, previous.active_version) == (2, 3)


def test_tenant_env_reads_return_values(client: ClientBase, transport: str) -> None:
    everything = {v.key: v.value for v in client.list_env_vars()}
    assert everything["REGION"] == "eu-west-1"
    assert client.get_env_var("API_KEY").value == "client-test-secret-value"
    assert "client-test-secret-value" not in repr(client.list_env_vars())  # kept out of reprs
    key = f"K_{transport.upper()}_{uuid.uuid4().hex[:6]}"
    assert client.set_env_var(key, "one").value == "one"
    assert client.import_env_vars({key: "two", f"{key}_B": "b"}) == sorted([key, f"{key}_B"])
    assert client.get_env_var(key).value == "two"
    assert client.delete_env_var(key) is True
    assert client.delete_env_var(key) is False
    with pytest.raises(ScriptumError) as info:
        client.get_env_var(key)
    assert info.value.code == "NOT_FOUND"


def test_script_env_overlay(client: ClientBase) -> None:
    env = client.get_script_env("echo")
    assert env.name == "echo" and env.env == {"MODE": "overlay"}
    assert "overlay" not in repr(env)
    name = fresh_name()
    client.create_script(name)
    client.update_script_env(name, set={"A": "1", "B": "2"})
    updated = client.update_script_env(name, set={"C": "3"}, delete=["A", "NOT_THERE"])
    assert (updated.name, dict(updated.env)) == (name, {"B": "2", "C": "3"})


def test_tools_and_templates(client: ClientBase) -> None:
    tools = client.list_tools()
    assert tools and all(t.tool_id and t.name for t in tools)
    templates = client.list_templates()
    assert templates
    one = client.get_template(templates[0].id)
    assert one.id == templates[0].id and one.dsl_content


def test_not_found_is_raised_at_once(client: ClientBase, admin: Admin) -> None:
    with pytest.raises(ScriptumError) as info:
        client.get_script("no-such-script")
    assert (info.value.code, info.value.method) == ("NOT_FOUND", "GetScript")
    assert admin.calls("GetScript") == 1
    with pytest.raises(ScriptumError, match="NOT_FOUND"):
        client.get_env_var("NO_SUCH_KEY")


def test_a_bad_argument_from_the_server_is_invalid_argument(client: ClientBase) -> None:
    with pytest.raises(ScriptumError) as info:
        client.create_script("Not A Valid Name!")
    assert info.value.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("token", "org", "code"),
    [
        ("tok-wrong-0000", "acme", "UNAUTHENTICATED"),
        (OTHER_TOKEN, "acme", "PERMISSION_DENIED"),
    ],
)
def test_refused_credentials_are_auth_errors_without_the_token(
    make_client: ClientFactory, admin: Admin, token: str, org: str, code: str
) -> None:
    client = make_client(token=token, org=org)
    with pytest.raises(ScriptumError) as info:
        client.list_scripts()
    assert info.value.is_auth and info.value.code == code
    for text in (str(info.value), repr(info.value), repr(client)):
        assert token not in text and TOKEN not in text


def test_the_org_may_be_named_instead_of_given_by_id(make_client: ClientFactory, admin: Admin) -> None:
    client = make_client(org="", org_name="acme")
    assert client.get_script("echo").active_version == 2


def test_another_organization_cannot_see_the_scripts(make_client: ClientFactory, admin: Admin) -> None:
    other = make_client(token=OTHER_TOKEN, org=OTHER_ORG)
    assert "echo" not in [s.name for s in other.list_scripts()]
    with pytest.raises(ScriptumError) as info:
        other.get_script("echo")
    assert info.value.code == "NOT_FOUND"


def test_both_transports_return_identical_records(server_addresses: tuple[str, str], admin: Admin) -> None:
    grpc_target, http_url = server_addresses
    with (
        GrpcClient(settings_for(grpc_target, http_url)) as over_grpc,
        HttpClient(settings_for(grpc_target, http_url, "http")) as over_http,
    ):
        assert over_grpc.get_script("echo") == over_http.get_script("echo")
        assert over_grpc.list_script_versions("echo") == over_http.list_script_versions("echo")
        assert over_grpc.get_script_env("echo") == over_http.get_script_env("echo")
        assert over_grpc.list_env_vars() == over_http.list_env_vars()
        assert over_grpc.list_tools() == over_http.list_tools()
        assert over_grpc.list_templates() == over_http.list_templates()
        run = over_grpc.run_thread("echo", 1, {"same": True})
        assert over_http.get_thread(run.thread.thread_id) == run.thread
        assert over_http.get_thread_result(run.thread.thread_id) == run.output
        nested = over_http.run_thread("echo", 3, {"nested": True})
        assert over_grpc.get_thread_result(nested.thread.thread_id) == nested.output
        assert json.loads(run.output.output_data if run.output else b"")["echo"] == {"same": True}


def test_records_pickle_for_xdist(client: ClientBase) -> None:
    import pickle

    run = client.run_thread("echo", 3, {"nested": True})
    for record in (
        run,
        client.get_script("echo"),
        client.list_script_versions("echo"),
        client.api_info(),
        client.get_script_env("echo"),
        client.get_env_var("REGION"),
        client.health(),
    ):
        assert pickle.loads(pickle.dumps(record)) == record
