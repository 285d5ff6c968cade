"""Auth on every RPC and every /v1 route; organization isolation; open health and reflection."""

from __future__ import annotations

import grpc
import httpx
import pytest
from devserver_kit import OTHER_AUTH, TOKEN
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import ServerAddresses
from pytest_scriptum.devserver._gateway import ROUTES

_SERVICES = [pb.DESCRIPTOR.services_by_name[name] for name in ("ScriptumService", "ScriptumDevAdmin")]
ALL_RPCS = [(service.full_name, method) for service in _SERVICES for method in service.methods]

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
    ("no org", (("authorization", f"BEARER {TOKEN}"),), grpc.StatusCode.PERMISSION_DENIED, 403),
]


def _path(template: str) -> str:
    return (
        template.replace("{name}", "echo")
        .replace("{key}", "DB_HOST")
        .replace("{version}", "1")
        .replace("{thread_id}", "t1")
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
        call = channel.unary_unary(
            f"/{service}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.RpcError) as exc:
            call(method.input_type._concrete_class(), metadata=metadata, timeout=10)
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
            path = _path(route.template)
            response = http.request(
                route.verb, path, headers=headers, json={} if route.verb != "GET" else None
            )
            assert response.status_code == http_status, (route.verb, path)
            assert response.json()["code"] == code.name


def test_route_table_covers_every_rpc() -> None:
    assert sorted(route.rpc for route in ROUTES) == sorted(method.name for _, method in ALL_RPCS)


def test_other_org_cannot_see_scripts(stub: pb_grpc.ScriptumServiceStub, addresses: ServerAddresses) -> None:
    for call, request in [
        (stub.GetScript, pb.GetScriptRequest(name="echo")),
        (stub.GetScriptEnv, pb.GetScriptEnvRequest(name="echo")),
        (stub.ListVersions, pb.ListVersionsRequest(name="echo")),
        (stub.GetVersion, pb.GetVersionRequest(name="echo", version=1)),
        (stub.RunThread, pb.RunThreadRequest(name="echo", version=1, input_json="1")),
        (
            stub.RollbackVersion,
            pb.RollbackVersionRequest(name="echo", to_version=3, expected_active_version=4),
        ),
    ]:
        with pytest.raises(grpc.RpcError) as exc:
            call(request, metadata=OTHER_AUTH)  # type: ignore[operator]
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert list(stub.ListScripts(pb.ListScriptsRequest(), metadata=OTHER_AUTH).scripts) == []
    headers = dict(OTHER_AUTH)
    response = httpx.get(f"{addresses.http}/v1/scriptum/scripts/echo/env", headers=headers)
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"


def test_health_serving_without_token(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "dodil.scriptum.v1.ScriptumService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
