"""Another organization's scripts, threads and env do not exist for a caller: every ScriptumService
RPC, over gRPC and over every HTTP route the proto declares, either answers NOT_FOUND for our
objects, lists only the caller's own, or serves public data — and nothing of ours changes. Calls
that write into the caller's organization (CreateScript, SetEnvVar, ImportEnvVars) are shown to
stay there on a server of their own. (Missing, wrong and non-bearer tokens on every RPC and route
are tests/devserver/test_server_auth.py's table; this extends it to a valid caller of another
organization.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format, message_factory
from google.protobuf.message import Message
from kit import AUTH, ORG, OTHER_AUTH, OTHER_ORG, OTHER_TOKEN, TOKEN, Platform
from kit.routes import SERVICE, Route, proto_routes
from kit.seeds.alpha_beta import TENANT_ENV, write_alpha_beta_seed

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.devserver import DevServer

SCRIPT = "alpha"
OUR_SCRIPTS = ("alpha", "beta")
# Calls that create or overwrite in the *caller's* organization: on the shared server they would
# give the other organization an "alpha" or a REGION of its own and blur the table; they are
# checked on a server of their own (test_writes_stay_in_the_callers_org).
WRITES_INTO_CALLERS_ORG = {"CreateScript", "SetEnvVar", "ImportEnvVars"}


@dataclass(frozen=True)
class Ours:
    """What our organization owns on the module's server: a finished thread, a template id to read."""

    thread_id: str
    template_id: str


def _hidden(request: Message) -> tuple[Message, str]:
    return request, "hidden"


def _table(ours: Ours) -> dict[str, tuple[Message, str]]:
    """Per RPC: a request naming our objects, and what the other organization must get back.

    ``hidden``: NOT_FOUND. ``own``: an answer that holds nothing of ours. ``public``: the same
    public data every caller gets (templates, tools, health). ``unimplemented``: UNIMPLEMENTED,
    which our own organization gets too (documented as Unimplemented / Preview): it tells nothing.
    ``absent``: OK with ``deleted: false`` — a delete in the caller's organization, where the key
    does not exist (DeleteEnvVar answers a missing key so, for its owner too).
    """
    thread = ours.thread_id
    return {
        "ListScripts": (pb.ListScriptsRequest(), "own"),
        "GetScript": _hidden(pb.GetScriptRequest(name=SCRIPT)),
        "DeleteScript": _hidden(pb.DeleteScriptRequest(name=SCRIPT)),
        "SaveScriptDraft": _hidden(
            pb.SaveScriptDraftRequest(name=SCRIPT, dsl_content="def handler(event, context):\n    return 1\n")
        ),
        "CompileScriptDraft": _hidden(pb.CompileScriptDraftRequest(name=SCRIPT)),
        "TestScriptDraft": _hidden(pb.TestScriptDraftRequest(name=SCRIPT, input_json="{}")),
        "PublishScriptDraft": _hidden(pb.PublishScriptDraftRequest(name=SCRIPT)),
        "RollbackScript": _hidden(
            pb.RollbackScriptRequest(name=SCRIPT, to_version=1, expected_active_version=1, reason="x")
        ),
        "ListScriptVersions": _hidden(pb.ListScriptVersionsRequest(name=SCRIPT)),
        "GetScriptVersion": _hidden(pb.GetScriptVersionRequest(name=SCRIPT, version=1)),
        "GetScriptCode": _hidden(pb.GetScriptCodeRequest(name=SCRIPT, version=1)),
        "GetDraftInfo": _hidden(pb.GetDraftInfoRequest(name=SCRIPT)),
        "CreateThread": _hidden(pb.CreateThreadRequest(script_name=SCRIPT, version=1, input_json="{}")),
        "GetThread": _hidden(pb.GetThreadRequest(thread_id=thread)),
        "ListThreads": (pb.ListThreadsRequest(script_name_filter=SCRIPT), "own"),
        "CancelThread": _hidden(pb.CancelThreadRequest(thread_id=thread)),
        "ResumeThread": _hidden(pb.ResumeThreadRequest(thread_id=thread, step_input_override_json='"yes"')),
        "WatchThread": _hidden(pb.WatchThreadRequest(thread_id=thread)),
        "WatchStep": _hidden(pb.WatchStepRequest(thread_id=thread, step_path="1")),
        "GetThreadResult": _hidden(pb.GetThreadResultRequest(thread_id=thread)),
        "StreamThreadResult": _hidden(pb.StreamThreadResultRequest(thread_id=thread)),
        "StreamStepResult": _hidden(pb.StreamStepResultRequest(thread_id=thread)),
        "ListArtifacts": (pb.ListArtifactsRequest(thread_id=thread), "unimplemented"),
        "ListTools": (pb.ListToolsRequest(), "public"),
        "GetEnvVar": _hidden(pb.GetEnvVarRequest(key="REGION")),
        "ListEnvVars": (pb.ListEnvVarsRequest(), "own"),
        "DeleteEnvVar": (pb.DeleteEnvVarRequest(key="REGION"), "absent"),
        "GetScriptEnv": _hidden(pb.GetScriptEnvRequest(name=SCRIPT)),
        "UpdateScriptEnv": _hidden(pb.UpdateScriptEnvRequest(name=SCRIPT, set={"TEAM": "hijacked"})),
        "ListTemplates": (pb.ListTemplatesRequest(), "public"),
        "GetTemplate": (pb.GetTemplateRequest(id=ours.template_id), "public"),
        "HealthCheck": (pb.HealthCheckRequest(), "public"),
    }


def _state(platform: Platform, thread_id: str) -> tuple[bytes, ...]:
    """Everything of ours the table could touch, serialized deterministically."""
    stub, auth = platform.stub, AUTH
    calls: list[Message] = [
        stub.ListScripts(pb.ListScriptsRequest(), metadata=auth, timeout=10),
        *(stub.GetScript(pb.GetScriptRequest(name=name), metadata=auth, timeout=10) for name in OUR_SCRIPTS),
        stub.ListScriptVersions(pb.ListScriptVersionsRequest(name=SCRIPT), metadata=auth, timeout=10),
        stub.GetDraftInfo(pb.GetDraftInfoRequest(name=SCRIPT), metadata=auth, timeout=10),
        stub.GetScriptEnv(pb.GetScriptEnvRequest(name=SCRIPT), metadata=auth, timeout=10),
        stub.ListEnvVars(pb.ListEnvVarsRequest(), metadata=auth, timeout=10),
        stub.GetThread(pb.GetThreadRequest(thread_id=thread_id), metadata=auth, timeout=10),
        stub.GetThreadResult(pb.GetThreadResultRequest(thread_id=thread_id), metadata=auth, timeout=10),
        stub.ListThreads(pb.ListThreadsRequest(), metadata=auth, timeout=10),
    ]
    return tuple(message.SerializeToString(deterministic=True) for message in calls)


def _mentions_ours(text: str, ours: Ours) -> list[str]:
    """Which of our identifiers and env values appear in ``text``."""
    marks = [*OUR_SCRIPTS, ours.thread_id, *TENANT_ENV, *TENANT_ENV.values()]
    return [mark for mark in marks if f'"{mark}"' in text]  # every one is a JSON string there


@pytest.fixture(scope="module")
def ours(platform: Platform) -> Ours:
    thread, _ = platform.run(SCRIPT, 1, {"x": 1})
    assert thread.status == pb.THREAD_STATUS_COMPLETED, (thread.error_code, thread.error)
    templates = platform.stub.ListTemplates(pb.ListTemplatesRequest(), timeout=10).templates
    assert templates, "the server's template catalog is empty: GetTemplate cannot be tested"
    return Ours(thread.thread_id, templates[0].id)


@pytest.fixture
def unchanged(platform: Platform, ours: Ours) -> Iterator[None]:
    before = _state(platform, ours.thread_id)
    yield
    assert _state(platform, ours.thread_id) == before


def test_the_table_covers_every_rpc(ours: Ours) -> None:
    assert set(_table(ours)) | WRITES_INTO_CALLERS_ORG == {method.name for method in SERVICE.methods}
    assert len(SERVICE.methods) == 35


def _grpc_call(
    channel: grpc.Channel, method: str, request: Message, auth: tuple[tuple[str, str], ...] = OTHER_AUTH
) -> tuple[grpc.StatusCode, str]:
    """Call ``method`` (as the other organization by default); (status, the answer as JSON text)."""
    descriptor = SERVICE.methods_by_name[method]
    path = f"/{SERVICE.full_name}/{method}"
    serialize: Callable[[Message], bytes] = lambda m: m.SerializeToString()  # noqa: E731
    try:
        if descriptor.server_streaming:
            stream = channel.unary_stream(path, request_serializer=serialize, response_deserializer=bytes)
            answers = list(stream(request, metadata=auth, timeout=30))
        else:
            unary = channel.unary_unary(path, request_serializer=serialize, response_deserializer=bytes)
            answers = [unary(request, metadata=auth, timeout=30)]
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        return error.code(), error.details() or ""
    output = message_factory.GetMessageClass(descriptor.output_type)
    rendered = [json_format.MessageToDict(output.FromString(raw)) for raw in answers]
    return grpc.StatusCode.OK, json.dumps(rendered)


def test_every_rpc_hides_another_orgs_objects(
    channel: grpc.Channel, ours: Ours, unchanged: None
) -> None:
    for method, (request, expect) in _table(ours).items():
        code, text = _grpc_call(channel, method, request)
        if expect == "hidden":
            assert code == grpc.StatusCode.NOT_FOUND, (method, code, text)
        elif expect == "unimplemented":
            assert code == grpc.StatusCode.UNIMPLEMENTED, (method, code, text)
            assert _grpc_call(channel, method, request, AUTH)[0] == code, method  # as for its owner
        elif expect == "absent":
            # One answer with every field at its default: deleted is false.
            assert (code, json.loads(text)) == (grpc.StatusCode.OK, [{}]), (method, code, text)
        else:
            assert code == grpc.StatusCode.OK, (method, code, text)
            assert _mentions_ours(text, ours) == [], (method, text)


def _http_request(route: Route, request: Message) -> tuple[str, dict[str, str], dict[str, Any] | None]:
    """(path, query, JSON body) of ``request`` on ``route``: path fields filled in, the rest in the
    body (camelCase, as pbjson) for ``body: "*"`` routes, else in the query."""
    fields = json_format.MessageToDict(request, preserving_proto_field_name=True)
    path = route.template
    for name in route.path_fields:
        path = path.replace("{" + name + "}", str(fields.pop(name)))
    if route.body == "*":
        camel = {request.DESCRIPTOR.fields_by_name[name].json_name: value for name, value in fields.items()}
        return path, {}, camel
    return path, {name: str(value) for name, value in fields.items()}, None


def _http_error_status(response: httpx.Response) -> str:
    """The gRPC status name of an HTTP answer: from a unary error body, from the final error line
    of a newline-delimited stream, or "OK"."""
    if response.status_code >= 400:
        body = response.json()
        assert {"code", "status", "message"} <= set(body), body
        return str(body["status"])
    lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    if lines and isinstance(lines[-1], dict) and "error" in lines[-1]:
        return str(lines[-1]["error"]["status"])
    return "OK"


def test_every_route_hides_another_orgs_objects(server: DevServer, ours: Ours, unchanged: None) -> None:
    table = _table(ours)
    routes = [route for route in proto_routes() if route.rpc not in WRITES_INTO_CALLERS_ORG]
    assert {route.rpc for route in routes} == set(table)  # every RPC of the table has a route
    with httpx.Client(base_url=server.addresses.http, headers=dict(OTHER_AUTH), timeout=30) as http:
        for route in routes:
            request, expect = table[route.rpc]
            path, query, body = _http_request(route, request)
            response = http.request(route.verb, path, params=query, json=body)
            status = _http_error_status(response)
            if expect == "hidden":
                assert status == "NOT_FOUND", (route, response.status_code, response.text[:300])
                if response.status_code >= 400:
                    assert response.status_code == 404, (route, response.text[:300])
            elif expect == "unimplemented":
                assert (response.status_code, status) == (501, "UNIMPLEMENTED"), (route, response.text[:300])
            elif expect == "absent":
                assert response.status_code == 200, (route, response.text[:300])
                assert response.json().get("deleted", False) is False, (route, response.text[:300])
            else:
                assert (response.status_code, status) == (200, "OK"), (route, response.text[:300])
                assert _mentions_ours(response.text, ours) == [], (route, response.text[:300])


THEIR_HANDLER = "def handler(event, context):\n    return 'theirs'\n"


def test_writes_stay_in_the_callers_org(tmp_path: Path) -> None:
    # A server of its own: after this, the other organization has an "alpha" and a REGION of its
    # own, which the table tests above must not see.
    principals = {TOKEN: ORG, OTHER_TOKEN: OTHER_ORG}
    seed = write_alpha_beta_seed(tmp_path / "seed")
    with DevServer(data_dir=tmp_path / "data", seed=seed, principals=principals) as dev:
        platform = Platform(dev.addresses.grpc, dev.addresses.http, token=TOKEN, org=ORG)
        other = Platform(dev.addresses.grpc, dev.addresses.http, token=OTHER_TOKEN, org=OTHER_ORG)
        try:
            thread, _ = platform.run(SCRIPT, 1, {"x": 1})
            before = _state(platform, thread.thread_id)
            theirs, auth = other.stub, other.metadata

            created = theirs.CreateScript(pb.CreateScriptRequest(name=SCRIPT), metadata=auth)
            assert (created.name, created.active_version) == (SCRIPT, 0)  # theirs, empty: not our v1
            draft = pb.SaveScriptDraftRequest(name=SCRIPT, dsl_content=THEIR_HANDLER)
            theirs.SaveScriptDraft(draft, metadata=auth)
            theirs.CompileScriptDraft(pb.CompileScriptDraftRequest(name=SCRIPT), metadata=auth)
            published = theirs.PublishScriptDraft(pb.PublishScriptDraftRequest(name=SCRIPT), metadata=auth)
            assert published.version.version == 1  # their own first version, not our v2
            theirs.SetEnvVar(pb.SetEnvVarRequest(key="REGION", value="theirs"), metadata=auth)
            theirs.ImportEnvVars(pb.ImportEnvVarsRequest(vars={"API_KEY": "their-key-9999"}), metadata=auth)

            assert _state(platform, thread.thread_id) == before
            _, result = platform.run(SCRIPT, 1, {"x": 1})  # our v1 still sees our env
            seen = json.loads(result.output_data)["env"]
            assert (seen["REGION"], seen["API_KEY"]) == (TENANT_ENV["REGION"], TENANT_ENV["API_KEY"])
            assert theirs.GetEnvVar(pb.GetEnvVarRequest(key="REGION"), metadata=auth).value == "theirs"
        finally:
            platform.close()
            other.close()
