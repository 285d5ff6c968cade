"""The gRPC client reads the wire format from the server (reflection) and addresses fields by name.

Against scripted servers on real loopback sockets whose descriptors differ from the bundled proto:
every field renumbered, fields or methods removed, reflection switched off.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from kit import ORG, TOKEN
from kit.scripted import ScriptedGrpcServer, settings_for
from kit.wire import scriptum_pool

from pytest_scriptum.client import GrpcClient, ScriptumError
from pytest_scriptum.client._contract import EXTENSIONS

OUTPUT = {"version": 3, "ok": True}


class Platform:
    """A tiny stand-in of the platform: one script "inv" (v3 active of 4); threads complete at once."""

    def __init__(self) -> None:
        self.threads: dict[str, dict[str, Any]] = {}

    def handlers(self) -> dict[str, Any]:
        return {
            "GetScript": self.get_script,
            "CreateThread": self.create_thread,
            "WatchThread": self.watch_thread,
            "GetThread": self.get_thread,
            "GetThreadResult": self.get_thread_result,
            "RollbackScript": self.rollback,
            "HealthCheck": lambda request, context: {
                "status": "SERVING",
                "version": "t",
                "uptime_seconds": 5,
            },
        }

    def get_script(self, request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        if request.get("name") != "inv":
            context.abort(grpc.StatusCode.NOT_FOUND, f"script {request.get('name')!r} not found")
        return {
            "name": "inv",
            "active_version": 3,
            "latest_version": 4,
            "status": "SCRIPT_STATUS_ACTIVE",
            "activation_history": [{"sequence": 1, "version": 3, "kind": "ACTIVATION_KIND_PUBLISH"}],
        }

    def create_thread(self, request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        thread_id = f"thr_{len(self.threads) + 1}"
        self.threads[thread_id] = {
            "thread_id": thread_id,
            "status": "THREAD_STATUS_COMPLETED",
            "script_name": request["script_name"],
            "version": request.get("version", 0),
            "error_code": "",
            "env_keys": ["REGION"],
        }
        return {
            "thread_id": thread_id,
            "status": "THREAD_STATUS_PENDING",
            "version": request.get("version", 0),
        }

    def get_thread(self, request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        return self.threads[request["thread_id"]]

    def watch_thread(
        self, request: dict[str, Any], context: grpc.ServicerContext
    ) -> Iterator[dict[str, Any]]:
        yield {
            "type": "THREAD_EVENT_TYPE_STATUS",
            "thread": self.threads[request["thread_id"]],
            "sequence": 1,
        }

    def get_thread_result(self, request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        data = json.dumps(OUTPUT).encode()
        return {
            "thread_id": request["thread_id"],
            "status": "THREAD_STATUS_COMPLETED",
            "output_data": base64.b64encode(data).decode(),
            "output_total_bytes": len(data),
            "steps": [{"path": "1", "name": "parse", "status": "STEP_STATUS_COMPLETED"}],
        }

    def rollback(self, request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        script = self.get_script({"name": request["name"]}, context)
        script["active_version"] = request.get("to_version", 0)
        return {
            "script": script,
            "previous_active_version": 3,
            "active_version": request.get("to_version", 0),
        }


@pytest.fixture
def platform() -> Platform:
    return Platform()


def client_of(server: ScriptedGrpcServer, **overrides: Any) -> GrpcClient:
    return GrpcClient(settings_for(server.target, None, **overrides))


def test_a_renumbered_server_is_spoken_to_by_field_name(platform: Platform) -> None:
    with (
        ScriptedGrpcServer(platform.handlers(), pool=scriptum_pool(offset=100)) as server,
        client_of(server) as client,
    ):
        info = client.api_info()
        assert (info.descriptors, info.problems) == ("reflection", ())
        assert info.extensions == EXTENSIONS
        script = client.get_script("inv")
        assert (script.active_version, script.latest_version, script.status) == (3, 4, "ACTIVE")
        assert script.history is not None and [a.kind for a in script.history] == ["PUBLISH"]
        run = client.run_thread("inv", 4, {"n": 1}, timeout_s=30)
    # What the server decoded with its own numbering is what the client meant.
    sent = server.requests["CreateThread"][0]
    assert (sent["script_name"], sent["version"], json.loads(sent["input_json"])) == ("inv", 4, {"n": 1})
    assert sent["timeout"] == "30s" and sent["load_env"] is True
    assert len(sent["metadata"]["scriptum.request_id"]) == 32
    assert (run.thread.status, run.thread.version, run.thread.env_keys) == ("COMPLETED", 4, ("REGION",))
    assert run.output is not None and json.loads(run.output.output_data) == OUTPUT
    assert [s.path for s in run.output.steps] == ["1"]


def test_the_bundled_proto_on_a_renumbered_server_would_drop_the_pinned_version(platform: Platform) -> None:
    # Why reflection matters: the same request, encoded with the bundled numbers, loses `version`.
    from pytest_scriptum._proto import scriptum_pb2 as pb

    with ScriptedGrpcServer(platform.handlers(), pool=scriptum_pool(offset=100)) as server:
        channel = grpc.insecure_channel(server.target)
        call = channel.unary_unary(
            f"/{'dodil.scriptum.v1.ScriptumService'}/CreateThread",
            request_serializer=pb.CreateThreadRequest.SerializeToString,
            response_deserializer=pb.CreateThreadResponse.FromString,
        )
        with pytest.raises(grpc.RpcError):  # the server's script_name is empty: KeyError in the stand-in
            call(pb.CreateThreadRequest(script_name="inv", version=4), timeout=5)
        channel.close()
    assert "version" not in server.requests["CreateThread"][0]


def test_reflection_carries_the_auth_metadata_and_happens_once(platform: Platform) -> None:
    with ScriptedGrpcServer(platform.handlers()) as server, client_of(server, org_name="Acme Inc") as client:
        client.get_script("inv")
        client.get_script("inv")
        client.health()
        assert client.api_info().descriptors == "reflection"
    reflections = server.calls("ServerReflectionInfo")
    assert len(reflections) == 1
    for call in reflections + server.calls("GetScript"):
        assert call.metadata["authorization"] == f"Bearer {TOKEN}"
        assert call.metadata["x-organization-id"] == ORG
        assert call.metadata["x-organization-name"] == "Acme Inc"


def test_org_headers_are_sent_only_when_configured(platform: Platform) -> None:
    with ScriptedGrpcServer(platform.handlers()) as server, client_of(server, org="") as client:
        client.get_script("inv")
    for call in server.seen:
        assert "x-organization-id" not in call.metadata and "x-organization-name" not in call.metadata
        assert call.metadata["authorization"] == f"Bearer {TOKEN}"


def test_without_reflection_the_bundled_descriptors_are_used_and_said(platform: Platform) -> None:
    with ScriptedGrpcServer(platform.handlers(), reflection_on=False) as server, client_of(server) as client:
        info = client.api_info()
        assert info.descriptors == "bundled" and info.problems == ()
        assert "UNIMPLEMENTED" in info.detail and "bundled" in info.detail
        assert client.get_script("inv").active_version == 3
        assert client.api_info() is info  # resolved once per client
    assert len(server.calls("ServerReflectionInfo")) == 1


def test_a_server_lacking_extensions_gets_none_and_says_so(platform: Platform) -> None:
    drop = {
        "RollbackScriptRequest": {"expected_active_version", "reason", "incident_id", "rollback_id"},
        "Script": {"activation_history"},
    }
    with (
        ScriptedGrpcServer(platform.handlers(), pool=scriptum_pool(drop=drop)) as server,
        client_of(server) as client,
    ):
        info = client.api_info()
        assert info.problems == ()
        assert not info.has("RollbackScriptRequest.expected_active_version")
        assert not info.has("Script.activation_history")
        assert info.has("Thread.error_code")
        result = client.rollback_script(
            "inv", 2, expected_active_version=3, reason="gate failed", incident_id="INC-1", rollback_id="rb-1"
        )
        assert result.active_version == 2
        assert client.get_script("inv").history is None  # the platform keeps none: not "empty"
    assert server.requests["RollbackScript"] == [{"name": "inv", "to_version": 2}]


def test_problems_name_every_missing_method_and_field(platform: Platform) -> None:
    drop = {"Script": {"active_version"}, "CreateThreadRequest": {"version"}}
    pool = scriptum_pool(drop=drop, drop_methods={"StreamThreadResult", "WatchThread"})
    with ScriptedGrpcServer(platform.handlers(), pool=pool) as server, client_of(server) as client:
        info = client.api_info()
        assert "GetScript: response field Script.active_version missing" in info.problems
        assert "CreateThread: request field CreateThreadRequest.version missing" in info.problems
        assert "StreamThreadResult: method missing" in info.problems
        assert info.problems_of("CreateThread") == (
            "CreateThread: request field CreateThreadRequest.version missing",
        )
        assert not any(p.startswith("WatchThread") for p in info.problems)
        assert any(f.startswith("WatchThread: method missing") for f in info.fallbacks)
        # A pinned version the server cannot carry is never sent as "whatever is active".
        with pytest.raises(ScriptumError) as raised:
            client.create_thread("inv", 4, {})
        assert raised.value.code == "UNIMPLEMENTED" and "version" in raised.value.message
    assert "CreateThread" not in server.requests


def test_a_field_of_another_type_is_a_problem(platform: Platform) -> None:
    from google.protobuf import descriptor_pb2, descriptor_pool

    from pytest_scriptum._proto import scriptum_pb2 as pb

    proto = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(proto)
    thread = next(m for m in proto.message_type if m.name == "Thread")
    next(
        f for f in thread.field if f.name == "version"
    ).type = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    pool = scriptum_pool()
    retyped = descriptor_pool.DescriptorPool()
    for name in ("google/protobuf/descriptor.proto", "google/api/http.proto", "google/api/annotations.proto"):
        file = descriptor_pb2.FileDescriptorProto()
        pool.FindFileByName(name).CopyToProto(file)
        retyped.Add(file)
    retyped.Add(proto)
    with ScriptedGrpcServer({}, pool=retyped) as server, client_of(server) as client:
        problems = client.api_info().problems
    assert "GetThread: response field Thread.version is string, expected int" in problems


def test_an_unreachable_server_is_not_cached_as_bundled(platform: Platform) -> None:
    with ScriptedGrpcServer(platform.handlers()) as server:
        target = server.target
    # Nothing listens now: reflection fails with UNAVAILABLE, which is raised, not taken for "no reflection".
    client = GrpcClient(
        settings_for(target, None, retry=settings_for(target, None).retry.__class__(retries=0))
    )
    with client, pytest.raises(ScriptumError) as raised:
        client.get_script("inv")
    assert (raised.value.code, raised.value.method) == ("UNAVAILABLE", "GetScript")
    assert client._resolved is None
