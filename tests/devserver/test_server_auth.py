"""Auth on every RPC and every route: bad credentials are refused everywhere except the documented
unauthenticated methods; either org header works; another organization's objects do not exist."""

from __future__ import annotations

import re

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kit import AUTH, OTHER_AUTH, TOKEN
from kit.constants import REPO
from kit.transports import GrpcTransport, create, settle

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import ServerAddresses
from pytest_scriptum.devserver._gateway import ROUTES

_SERVICES = [pb.DESCRIPTOR.services_by_name[name] for name in ("ScriptumService", "ScriptumDevAdmin")]
ALL_RPCS = [(service.full_name, method) for service in _SERVICES for method in service.methods]
OPEN = {"HealthCheck", "ListTemplates", "GetTemplate"}

BAD_CREDENTIALS = [
    ("no token", (("x-organization-id", "acme"),), grpc.StatusCode.UNAUTHENTICATED, 401),
    (
        "wrong token",
        (("authorization", "Bearer nope"), ("x-organization-id", "acme")),
        grpc.StatusCode.UNAUTHENTICATED,
        401,
    ),
    (
        "not bearer",
        (("authorization", f"Basic {TOKEN}"), ("x-organization-id", "acme")),
        grpc.StatusCode.UNAUTHENTICATED,
        401,
    ),
    (
        "wrong org",
        (("authorization", f"bearer {TOKEN}"), ("x-organization-id", "globex")),
        grpc.StatusCode.PERMISSION_DENIED,
        403,
    ),
    (
        "wrong org name",
        (("authorization", f"bearer {TOKEN}"), ("x-organization-name", "Globex Inc")),
        grpc.StatusCode.PERMISSION_DENIED,
        403,
    ),
    (
        "id and name disagree",
        (
            ("authorization", f"Bearer {TOKEN}"),
            ("x-organization-id", "acme"),
            ("x-organization-name", "globex"),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        403,
    ),
    ("no org", (("authorization", f"BEARER {TOKEN}"),), grpc.StatusCode.PERMISSION_DENIED, 403),
]


def _path(template: str) -> str:
    return (
        template.replace("{name}", "echo")
        .replace("{key}", "DB_HOST")
        .replace("{version}", "1")
        .replace("{thread_id}", "thr_x")
        .replace("{step_path}", "1")
        .replace("{id}", "human-approval")
    )


@pytest.mark.parametrize(
    ("label", "metadata", "code", "http_status"), BAD_CREDENTIALS, ids=[b[0] for b in BAD_CREDENTIALS]
)
def test_every_rpc_rejects_bad_credentials(
    channel: grpc.Channel,
    label: str,
    metadata: tuple[tuple[str, str], ...],
    code: grpc.StatusCode,
    http_status: int,
) -> None:
    for service, method in ALL_RPCS:
        if method.name in OPEN:
            continue
        call = channel.unary_stream(
            f"/{service}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.RpcError) as exc:
            list(call(method.input_type._concrete_class(), metadata=metadata, timeout=10))
        assert exc.value.code() == code, method.name  # type: ignore[attr-defined]
        expected = "authentication failed" if http_status == 401 else "authorization failed"
        assert expected in exc.value.details(), method.name  # type: ignore[attr-defined]
        assert TOKEN not in exc.value.details()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("label", "metadata", "code", "http_status"), BAD_CREDENTIALS, ids=[b[0] for b in BAD_CREDENTIALS]
)
def test_every_route_rejects_bad_credentials(
    addresses: ServerAddresses,
    label: str,
    metadata: tuple[tuple[str, str], ...],
    code: grpc.StatusCode,
    http_status: int,
) -> None:
    headers = dict(metadata)
    with httpx.Client(base_url=addresses.http, timeout=10) as http:
        for route in ROUTES:
            response = http.request(
                route.verb, _path(route.template), headers=headers, json={} if route.body else None
            )
            if route.rpc in OPEN:
                assert response.status_code == 200, route.template  # open even with bad credentials
                continue
            assert response.status_code == http_status, (route.verb, route.template)
            body = response.json()
            assert (body["status"], body["code"]) == (code.name, code.value[0])
            assert TOKEN not in response.text


def test_open_methods_need_no_credentials(channel: grpc.Channel, addresses: ServerAddresses) -> None:
    stub = pb_grpc.ScriptumServiceStub(channel)
    assert stub.HealthCheck(pb.HealthCheckRequest()).status == "SERVING"
    assert len(stub.ListTemplates(pb.ListTemplatesRequest()).templates) == 3
    assert stub.GetTemplate(pb.GetTemplateRequest(id="http-fetch")).id == "http-fetch"
    paths = ("/v1/scriptum/health", "/v1/scriptum/templates", "/v1/scriptum/templates/http-fetch")
    for path in (*paths, "/health", "/ready", "/metrics"):
        assert httpx.get(f"{addresses.http}{path}").status_code == 200, path


def test_route_table_covers_every_rpc_with_its_documented_route() -> None:
    served = {route.rpc for route in ROUTES}
    assert served == {method.name for _, method in ALL_RPCS}
    table = {(route.verb, route.template): route.rpc for route in ROUTES}
    assert table[("PATCH", "/v1/scriptum/scripts/{name}/env")] == "UpdateScriptEnv"
    assert table[("GET", "/v1/scriptum/scripts/{name}/code")] == "GetScriptCode"  # additional_bindings
    assert table[("GET", "/v1/scriptum/scripts/{name}/code/versions/{version}")] == "GetScriptCode"
    assert table[("GET", "/v1/scriptum/threads/{thread_id}/steps/{step_path}/watch")] == "WatchStep"
    assert table[("POST", "/v1/scriptum/env/import")] == "ImportEnvVars"
    assert len([r for r in ROUTES if not r.admin]) == 36


def test_either_org_header_is_accepted(channel: grpc.Channel) -> None:
    stub = pb_grpc.ScriptumServiceStub(channel)
    by_name = (("authorization", f"Bearer {TOKEN}"), ("x-organization-name", "Acme Corp"))
    both = (*by_name, ("x-organization-id", "acme"))
    for metadata in (AUTH, by_name, both):
        assert stub.GetScript(pb.GetScriptRequest(name="echo"), metadata=metadata).active_version == 4


def test_other_org_sees_none_of_ours(channel: grpc.Channel, addresses: ServerAddresses) -> None:
    ours = GrpcTransport(channel, AUTH)
    thread_id = create(ours, "echo", 1, {})
    settle(ours, thread_id)
    theirs = GrpcTransport(channel, OTHER_AUTH)
    for method, request in [
        ("GetScript", pb.GetScriptRequest(name="echo")),
        ("GetScriptEnv", pb.GetScriptEnvRequest(name="echo")),
        ("UpdateScriptEnv", pb.UpdateScriptEnvRequest(name="echo", set={"X": "1"})),
        ("ListScriptVersions", pb.ListScriptVersionsRequest(name="echo")),
        ("GetScriptVersion", pb.GetScriptVersionRequest(name="echo", version=1)),
        ("GetScriptCode", pb.GetScriptCodeRequest(name="echo", version=1)),
        ("GetDraftInfo", pb.GetDraftInfoRequest(name="echo")),
        ("CreateThread", pb.CreateThreadRequest(script_name="echo", version=1)),
        ("RollbackScript", pb.RollbackScriptRequest(name="echo", to_version=3)),
        ("DeleteScript", pb.DeleteScriptRequest(name="echo")),
        ("GetThread", pb.GetThreadRequest(thread_id=thread_id)),
        ("GetThreadResult", pb.GetThreadResultRequest(thread_id=thread_id)),
        ("CancelThread", pb.CancelThreadRequest(thread_id=thread_id)),
        ("GetEnvVar", pb.GetEnvVarRequest(key="DB_HOST")),
    ]:
        with pytest.raises(Exception, match="NOT_FOUND"):
            theirs.call(method, request)
    with pytest.raises(Exception, match="NOT_FOUND"):
        list(theirs.stream("WatchThread", pb.WatchThreadRequest(thread_id=thread_id)))
    assert list(theirs.call("ListScripts", pb.ListScriptsRequest()).scripts) == []
    assert list(theirs.call("ListThreads", pb.ListThreadsRequest()).threads) == []
    assert list(theirs.call("ListEnvVars", pb.ListEnvVarsRequest()).vars) == []
    assert ours.call("GetScript", pb.GetScriptRequest(name="echo")).active_version == 4
    response = httpx.get(f"{addresses.http}/v1/scriptum/scripts/echo/env", headers=dict(OTHER_AUTH))
    assert response.status_code == 404 and response.json()["status"] == "NOT_FOUND"


def test_grpc_health_and_reflection_need_no_token(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "dodil.scriptum.v1.ScriptumService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_the_documented_route_table_is_the_served_one() -> None:
    doc = (REPO / "docs" / "http-gateway.md").read_text()
    rows = set(
        re.findall(
            r"^\| (GET|PUT|POST|PATCH|DELETE) \| `(/v1/[^`]+)` \| (?:ScriptumDevAdmin\.)?(\w+)", doc, re.M
        )
    )
    assert rows == {(route.verb, route.template, route.rpc) for route in ROUTES}
