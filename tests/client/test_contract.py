"""The table of what the plugin uses, the check of descriptors against it, requests by field name,
and the HTTP routes read from the proto (pure logic: no sockets)."""

from __future__ import annotations

import pytest
from kit.wire import scriptum_pool

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.client import ScriptumError
from pytest_scriptum.client._contract import ENUMS, EXTENSIONS, MESSAGES, METHODS, check_service, parse_spec
from pytest_scriptum.client._routes import ROUTES, Route, http_request
from pytest_scriptum.client._wire import Wire, bundled_service

# The EXTENSION fields the proto's comments name (DESIGN section 5).
DOCUMENTED_EXTENSIONS = {
    "RollbackScriptRequest.expected_active_version",
    "RollbackScriptRequest.reason",
    "RollbackScriptRequest.incident_id",
    "RollbackScriptRequest.rollback_id",
    "Script.activation_history",
    "ScriptVersion.rolled_back_from",
    "Thread.error_code",
    "Thread.env_keys",
    "Thread.pending_ask",
    "Thread.draft",
    "Activation.rollback_id",
}
# The documented RPCs (facts sheet section 2) and their documented routes.
DOCUMENTED_ROUTES = {
    "CreateScript": ("POST", "/v1/scriptum/scripts"),
    "ListScripts": ("GET", "/v1/scriptum/scripts"),
    "GetScript": ("GET", "/v1/scriptum/scripts/{name}"),
    "DeleteScript": ("DELETE", "/v1/scriptum/scripts/{name}"),
    "SaveScriptDraft": ("POST", "/v1/scriptum/scripts/{name}/draft"),
    "CompileScriptDraft": ("POST", "/v1/scriptum/scripts/{name}/draft/compile"),
    "TestScriptDraft": ("POST", "/v1/scriptum/scripts/{name}/draft/test"),
    "PublishScriptDraft": ("POST", "/v1/scriptum/scripts/{name}/draft/publish"),
    "RollbackScript": ("POST", "/v1/scriptum/scripts/{name}/rollback"),
    "ListScriptVersions": ("GET", "/v1/scriptum/scripts/{name}/versions"),
    "GetScriptVersion": ("GET", "/v1/scriptum/scripts/{name}/versions/{version}"),
    "GetScriptCode": ("GET", "/v1/scriptum/scripts/{name}/code/versions/{version}"),
    "GetDraftInfo": ("GET", "/v1/scriptum/scripts/{name}/draft"),
    "CreateThread": ("POST", "/v1/scriptum/threads"),
    "GetThread": ("GET", "/v1/scriptum/threads/{thread_id}"),
    "ListThreads": ("GET", "/v1/scriptum/threads"),
    "CancelThread": ("POST", "/v1/scriptum/threads/{thread_id}/cancel"),
    "ResumeThread": ("POST", "/v1/scriptum/threads/{thread_id}/resume"),
    "WatchThread": ("GET", "/v1/scriptum/threads/{thread_id}/watch"),
    "WatchStep": ("GET", "/v1/scriptum/threads/{thread_id}/steps/{step_path}/watch"),
    "GetThreadResult": ("GET", "/v1/scriptum/threads/{thread_id}/result"),
    "StreamThreadResult": ("GET", "/v1/scriptum/threads/{thread_id}/result/stream"),
    "StreamStepResult": ("GET", "/v1/scriptum/threads/{thread_id}/steps/stream"),
    "ListArtifacts": ("GET", "/v1/scriptum/threads/{thread_id}/artifacts"),
    "ListTools": ("GET", "/v1/scriptum/tools"),
    "SetEnvVar": ("PUT", "/v1/scriptum/env"),
    "GetEnvVar": ("GET", "/v1/scriptum/env/{key}"),
    "ListEnvVars": ("GET", "/v1/scriptum/env"),
    "DeleteEnvVar": ("DELETE", "/v1/scriptum/env/{key}"),
    "ImportEnvVars": ("POST", "/v1/scriptum/env/import"),
    "GetScriptEnv": ("GET", "/v1/scriptum/scripts/{name}/env"),
    "UpdateScriptEnv": ("PATCH", "/v1/scriptum/scripts/{name}/env"),
    "ListTemplates": ("GET", "/v1/scriptum/templates"),
    "GetTemplate": ("GET", "/v1/scriptum/templates/{id}"),
    "HealthCheck": ("GET", "/v1/scriptum/health"),
}


def test_the_table_names_exactly_the_documented_extensions() -> None:
    assert EXTENSIONS == DOCUMENTED_EXTENSIONS


def test_the_bundled_proto_satisfies_the_table() -> None:
    check = check_service(bundled_service())
    assert (check.problems, check.fallbacks) == ((), ())
    assert check.extensions == EXTENSIONS


def test_every_spec_parses_and_names_a_bundled_message_or_enum() -> None:
    for method, spec in METHODS.items():
        assert spec.request in MESSAGES and spec.response in MESSAGES, method
    for message, fields in MESSAGES.items():
        assert hasattr(pb, message), message
        for name, raw in fields.items():
            parsed = parse_spec(raw)
            assert name in getattr(pb, message).DESCRIPTOR.fields_by_name, f"{message}.{name}"
            if parsed.type[0].isupper():
                assert parsed.type in MESSAGES or parsed.type in ENUMS
    with pytest.raises(ValueError, match="bad field spec"):
        parse_spec("int flaky")
    with pytest.raises(ValueError, match="bad field spec"):
        parse_spec("NoSuchMessage")


def test_a_lacking_enum_value_is_a_problem() -> None:
    from google.protobuf import descriptor_pb2, descriptor_pool

    proto = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(proto)
    status = next(e for e in proto.enum_type if e.name == "ThreadStatus")
    keep = [v for v in status.value if v.name != "THREAD_STATUS_PAUSED"]
    del status.value[:]
    status.value.extend(keep)
    source = scriptum_pool()
    pool = descriptor_pool.DescriptorPool()
    for name in ("google/protobuf/descriptor.proto", "google/api/http.proto", "google/api/annotations.proto"):
        file = descriptor_pb2.FileDescriptorProto()
        source.FindFileByName(name).CopyToProto(file)
        pool.Add(file)
    pool.Add(proto)
    problems = check_service(pool.FindServiceByName("dodil.scriptum.v1.ScriptumService")).problems
    assert "GetThread: response field Thread.status: enum ThreadStatus lacks PAUSED" in problems


def test_an_extension_in_a_nested_message_is_checked_only_when_reachable() -> None:
    pool = scriptum_pool(drop={"Activation": {"rollback_id"}})
    check = check_service(pool.FindServiceByName("dodil.scriptum.v1.ScriptumService"))
    assert check.problems == ()
    assert (
        "Script.activation_history" in check.extensions and "Activation.rollback_id" not in check.extensions
    )


def test_requests_are_built_by_name_and_extensions_dropped_only_when_absent() -> None:
    full = Wire.bundled("test")
    fields = {"name": "inv", "to_version": 3, "expected_active_version": 4, "reason": "r"}
    message = full.request("RollbackScript", fields)
    assert (message.name, message.to_version, message.expected_active_version, message.reason) == (  # type: ignore[attr-defined]
        "inv",
        3,
        4,
        "r",
    )
    lacking = Wire.from_pool(scriptum_pool(drop={"RollbackScriptRequest": {"expected_active_version"}}))
    slim = lacking.request("RollbackScript", fields)
    assert "expected_active_version" not in slim.DESCRIPTOR.fields_by_name
    assert (slim.to_version, slim.reason) == (3, "r")  # type: ignore[attr-defined]


def test_a_missing_field_is_dropped_only_when_its_value_is_the_default() -> None:
    wire = Wire.from_pool(scriptum_pool(drop={"CreateThreadRequest": {"load_env", "version"}}))
    assert wire.request("CreateThread", {"script_name": "inv", "load_env": False, "version": 0})
    with pytest.raises(ScriptumError) as raised:
        wire.request("CreateThread", {"script_name": "inv", "version": 4})
    assert raised.value.code == "UNIMPLEMENTED" and "no field version" in raised.value.message


def test_a_value_the_servers_type_cannot_hold_is_refused() -> None:
    with pytest.raises(ScriptumError) as raised:
        Wire.bundled("test").request("GetScriptVersion", {"name": "inv", "version": "three"})
    assert raised.value.code == "UNIMPLEMENTED" and raised.value.method == "GetScriptVersion"


def test_a_missing_method_is_unimplemented() -> None:
    wire = Wire.from_pool(scriptum_pool(drop_methods={"WatchThread"}))
    with pytest.raises(ScriptumError) as raised:
        wire.method("WatchThread")
    assert raised.value.code == "UNIMPLEMENTED"


def test_enum_values_are_named_as_the_server_names_them() -> None:
    wire = Wire.bundled("test")
    assert wire.enum_name("ListThreads", "status_filter", "FAILED") == "THREAD_STATUS_FAILED"
    with pytest.raises(ValueError, match="no value SUCCEEDED"):
        wire.enum_name("ListThreads", "status_filter", "SUCCEEDED")


def test_routes_come_from_the_proto_and_are_the_documented_ones() -> None:
    assert {name: (r.verb, r.template) for name, r in ROUTES.items()} == DOCUMENTED_ROUTES
    assert ROUTES["CreateThread"].body == "*" and ROUTES["GetThread"].body == ""


def test_a_body_request_is_pbjson_without_its_path_parameters() -> None:
    request = http_request(
        ROUTES["RollbackScript"],
        pb.RollbackScriptRequest(
            name="inv parser/x", to_version=3, expected_active_version=4, incident_id="INC-7"
        ),
    )
    assert (request.verb, request.path) == ("POST", "/v1/scriptum/scripts/inv%20parser%2Fx/rollback")
    assert request.body == {"toVersion": 3, "expectedActiveVersion": 4, "incidentId": "INC-7"}
    assert request.params == ()


def test_a_get_request_puts_its_other_fields_in_the_query() -> None:
    request = http_request(
        ROUTES["ListThreads"],
        pb.ListThreadsRequest(
            page_size=5, page_token="t/1", status_filter=pb.THREAD_STATUS_FAILED, script_name_filter="inv"
        ),
    )
    assert (request.verb, request.path, request.body) == ("GET", "/v1/scriptum/threads", None)
    assert dict(request.params) == {
        "pageSize": "5",
        "pageToken": "t/1",
        "statusFilter": "THREAD_STATUS_FAILED",
        "scriptNameFilter": "inv",
    }
    version = http_request(ROUTES["GetScriptVersion"], pb.GetScriptVersionRequest(name="inv", version=4))
    assert (version.path, version.params) == ("/v1/scriptum/scripts/inv/versions/4", ())


def test_int64_bool_and_repeated_fields_in_the_query() -> None:
    route = Route("GET", "/v1/x", "")
    request = http_request(route, pb.ListScriptsRequest(page_size=2, tags=["a", "b"]))
    assert request.params == (("pageSize", "2"), ("tags", "a"), ("tags", "b"))
    request = http_request(
        Route("GET", "/v1/t/{thread_id}/result", ""),
        pb.GetThreadResultRequest(thread_id="t", output_only=True),
    )
    assert (request.path, request.params) == ("/v1/t/t/result", (("outputOnly", "true"),))


def test_a_patterned_path_parameter_is_filled() -> None:
    request = http_request(Route("GET", "/v1/{name=scripts/*}", ""), pb.GetScriptRequest(name="inv"))
    assert request.path == "/v1/inv"
