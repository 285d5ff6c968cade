"""Every ScriptumClient method against the embedded server, over both transports."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from client_testkit import OTHER_ORG, OTHER_TOKEN, TOKEN, ClientFactory
from helpers import Platform

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.client import ClientSettings, GrpcClient, HttpClient, ScriptumError
from pytest_scriptum.client._base import ClientBase


def fresh_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def test_scripts_and_versions(client: ClientBase) -> None:
    assert "echo" in [s.name for s in client.list_scripts()]
    script = client.get_script("echo")
    assert (script.active_version, script.latest_version) == (2, 3)
    assert [(a.version, a.kind) for a in script.history] == [(1, pb.ACTIVATE), (2, pb.ACTIVATE)]
    versions = client.list_versions("echo")
    assert [v.version for v in versions.versions] == [1, 2, 3]
    assert versions.active_version == 2
    v1 = client.get_version("echo", 1)
    assert (v1.script, v1.version, v1.active) == ("echo", 1, False)
    assert json.loads(v1.input_schema_json) == {"type": "object"}
    assert json.loads(v1.output_schema_json)["required"] == ["version", "echo"]
    assert client.get_version("echo", 2).active


def test_tenant_env_reads_return_keys_and_hashes_never_values(client: ClientBase) -> None:
    keys = [e.key for e in client.list_tenant_env()]
    assert {"REGION", "API_KEY"} <= set(keys)
    entry = client.get_tenant_env("REGION")
    assert entry.key == "REGION" and entry.source == pb.TENANT
    assert entry.value_sha256 == hashlib.sha256(b"eu-west-1").hexdigest()
    assert "client-test-secret-value" not in str(client.list_tenant_env())


def test_import_tenant_env(client: ClientBase, transport: str) -> None:
    key = f"IMPORTED_{transport.upper()}_{uuid.uuid4().hex[:6]}"
    entries = client.import_tenant_env({key: "v1"})
    assert key in [e.key for e in entries]
    assert client.get_tenant_env(key).value_sha256 == hashlib.sha256(b"v1").hexdigest()


def test_script_env_overlay(client: ClientBase) -> None:
    env = client.get_script_env("echo")
    assert [e.key for e in env.overlay] == ["MODE"]
    effective = {e.key: e.source for e in env.effective}
    assert effective["MODE"] == pb.OVERLAY and effective["REGION"] == pb.TENANT

    name = fresh_name()
    client.create_draft(name, "def handler(event, context):\n    return event\n")
    client.update_script_env(name, set={"A": "1", "B": "2"})
    updated = client.update_script_env(name, set={"C": "3"}, delete=["A", "NOT_THERE"])
    assert [e.key for e in updated.overlay] == ["B", "C"]
    assert updated.name == name


def test_draft_publish_activate_and_compare_and_set_rollback(client: ClientBase, admin: Platform) -> None:
    name = fresh_name()
    source = "def handler(event, context):\n    return {'ok': True}\n"
    draft = client.create_draft(name, source, output_schema={"type": "object"})
    assert draft.name == name and draft.source_sha256 == hashlib.sha256(source.encode()).hexdigest()
    assert client.get_script(name).has_draft
    first = client.publish_draft(name)
    assert (first.script, first.version, first.active) == (name, 1, False)
    assert json.loads(first.output_schema_json) == {"type": "object"}
    client.create_draft(name, source.replace("True", "False"))
    assert client.publish_draft(name).version == 2

    assert client.activate_version(name, 1, reason="first").active_version == 1
    promoted = client.activate_version(name, 2, expected_active_version=1, reason="promote")
    assert promoted.active_version == 2 and promoted.history[-1].reason == "promote"

    rolled = client.rollback_version(name, 1, expected_active_version=2, reason="gate failed",
                                     incident_id="INC-42")
    assert rolled.active_version == 1
    assert list(rolled.rolled_back_from) == [2]
    last = rolled.history[-1]
    assert (last.kind, last.version, last.from_version, last.incident_id) == (pb.ROLLBACK, 1, 2, "INC-42")

    admin.reset()
    with pytest.raises(ScriptumError) as info:
        client.rollback_version(name, 1, expected_active_version=2, reason="again")
    assert info.value.is_conflict and "gave up" not in str(info.value)
    assert admin.calls("RollbackVersion") == 1  # a conflict is not retried


def test_not_found_is_raised_at_once(client: ClientBase, admin: Platform) -> None:
    with pytest.raises(ScriptumError) as info:
        client.get_script("no-such-script")
    assert (info.value.code, info.value.method) == ("NOT_FOUND", "GetScript")
    assert admin.calls("GetScript") == 1
    with pytest.raises(ScriptumError, match="NOT_FOUND"):
        client.get_tenant_env("NO_SUCH_KEY")


def test_a_bad_argument_from_the_server_is_invalid_argument(client: ClientBase) -> None:
    with pytest.raises(ScriptumError) as info:
        client.create_draft("Not A Valid Name", "def handler(event, context):\n    return 1\n")
    assert info.value.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize(("token", "org", "code"), [
    ("tok-wrong-0000", "acme", "UNAUTHENTICATED"),
    (OTHER_TOKEN, "acme", "PERMISSION_DENIED"),
])
def test_refused_credentials_are_auth_errors_without_the_token(make_client: ClientFactory, admin: Platform,
                                                               token: str, org: str, code: str) -> None:
    client = make_client(token=token, org=org)
    with pytest.raises(ScriptumError) as info:
        client.list_scripts()
    assert info.value.is_auth and info.value.code == code
    for text in (str(info.value), repr(info.value), repr(client)):
        assert token not in text and TOKEN not in text


def test_another_organization_cannot_see_the_scripts(make_client: ClientFactory, admin: Platform) -> None:
    other = make_client(token=OTHER_TOKEN, org=OTHER_ORG)
    assert "echo" not in [s.name for s in other.list_scripts()]
    with pytest.raises(ScriptumError) as info:
        other.get_script("echo")
    assert info.value.code == "NOT_FOUND"


def test_both_transports_return_identical_messages(
        server_addresses: tuple[str, str], admin: Platform) -> None:
    grpc_target, http_url = server_addresses
    settings = ClientSettings(endpoint=grpc_target, http_url=http_url, org="acme", token=TOKEN)
    with GrpcClient(settings) as over_grpc, HttpClient(settings) as over_http:
        assert over_grpc.get_script("echo") == over_http.get_script("echo")
        assert over_grpc.list_versions("echo") == over_http.list_versions("echo")
        assert over_grpc.get_script_env("echo") == over_http.get_script_env("echo")
        thread = over_grpc.run_thread("echo", 1, {"same": True})
        assert over_http.get_thread(thread.thread_id) == thread
