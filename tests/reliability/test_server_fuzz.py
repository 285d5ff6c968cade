"""The embedded server fed random and malformed requests over real sockets: every answer is a
proper status (never INTERNAL / 5xx for a client's mistake), the server stays up, and the state
a release depends on (calc's versions, active version, history, overlay, tenant env) is intact."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import pytest
from helpers import auth
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_kit import ORG, SCRIPT, TOKEN

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServer
from pytest_scriptum.devserver._gateway import ROUTES

AUTH = auth(TOKEN, ORG)
HEADERS = dict(AUTH)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_services = [pb.DESCRIPTOR.services_by_name[name] for name in ("ScriptumService", "ScriptumDevAdmin")]
# SetFaults with random (valid) settings would inject faults on purpose: not a client mistake.
METHODS = [
    (service.full_name, method)
    for service in _services
    for method in service.methods
    if method.name != "SetFaults"
]
CLIENT_MISTAKES = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,
}
_ANY_MESSAGE = [
    pb.Faults(error_rate=0.5, methods=["x"]),
    pb.RunThreadRequest(name="zz-nope", version=7, input_json="{"),
    pb.ImportTenantEnvRequest(values={"bad key": "v"}),
    pb.Script(name="x", active_version=3),
]


def _fingerprint(channel: grpc.Channel) -> tuple[bytes, ...]:
    api = pb_grpc.ScriptumServiceStub(channel)
    return (
        api.GetScript(pb.GetScriptRequest(name=SCRIPT), metadata=AUTH, timeout=10).SerializeToString(),
        api.ListVersions(pb.ListVersionsRequest(name=SCRIPT), metadata=AUTH, timeout=10).SerializeToString(),
        api.GetScriptEnv(pb.GetScriptEnvRequest(name=SCRIPT), metadata=AUTH, timeout=10).SerializeToString(),
        *(
            api.GetTenantEnv(pb.GetTenantEnvRequest(key=key), metadata=AUTH, timeout=10).SerializeToString()
            for key in ("REGION", "API_KEY")
        ),
    )


@pytest.fixture(scope="module")
def channel(_shared_server: DevServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(_shared_server.addresses.grpc) as chan:
        yield chan


@pytest.fixture(scope="module")
def http_url(_shared_server: DevServer) -> str:
    return _shared_server.addresses.http


@pytest.fixture(scope="module")
def http(http_url: str) -> Iterator[httpx.Client]:
    """No default headers: each request carries exactly the headers a test draws."""
    with httpx.Client(base_url=http_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def intact(channel: grpc.Channel, http_url: str) -> Iterator[None]:
    """After every test of the module: state unchanged, health serving, a real run still works."""
    before = _fingerprint(channel)
    yield
    assert _fingerprint(channel) == before
    assert httpx.get(f"{http_url}/health", timeout=10).status_code == 200
    run = pb_grpc.ScriptumServiceStub(channel).RunThread(
        pb.RunThreadRequest(name=SCRIPT, version=1, input_json='{"x": 2}'), metadata=AUTH, timeout=30
    )
    assert run.status == pb.SUCCEEDED and '"doubled": 4' in run.output_json


def _raw_call(channel: grpc.Channel, path: str, payload: bytes, metadata: Any) -> grpc.StatusCode:
    call = channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        call(payload, metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        return error.code()
    return grpc.StatusCode.OK


@FUZZ
@given(
    target=st.sampled_from(METHODS),
    payload=st.one_of(
        st.binary(max_size=200), st.sampled_from(_ANY_MESSAGE).map(lambda m: m.SerializeToString())
    ),
    authenticated=st.booleans(),
)
def test_grpc_random_bytes_and_wrong_message_types(
    channel: grpc.Channel, intact: None, target: tuple[str, Any], payload: bytes, authenticated: bool
) -> None:
    service, method = target
    code = _raw_call(channel, f"/{service}/{method.name}", payload, AUTH if authenticated else ())
    assert code in CLIENT_MISTAKES, (method.name, payload)
    if not authenticated:
        assert code == grpc.StatusCode.UNAUTHENTICATED, (method.name, payload)


def test_grpc_unknown_methods_and_huge_strings(channel: grpc.Channel, intact: None) -> None:
    for path in ("/dodil.scriptum.v1.ScriptumService/Nope", "/no.such.Service/Call", "/"):
        assert _raw_call(channel, path, b"", AUTH) == grpc.StatusCode.UNIMPLEMENTED, path
    huge = pb.GetScriptRequest(name="a" * 3_000_000).SerializeToString()
    path = "/dodil.scriptum.v1.ScriptumService/GetScript"
    assert _raw_call(channel, path, huge, AUTH) == grpc.StatusCode.INVALID_ARGUMENT
    too_big = pb.GetScriptRequest(name="a" * 5_000_000).SerializeToString()  # over the 4 MiB message limit
    assert _raw_call(channel, path, too_big, AUTH) == grpc.StatusCode.RESOURCE_EXHAUSTED


_segment = st.one_of(
    st.sampled_from(["zz-nope", "1", "0", "-1", "99999999999", "thread-x", "UNKNOWN_KEY", "..", "%00"]),
    st.text(min_size=1, max_size=20).filter(lambda s: s != SCRIPT).map(lambda s: quote(s, safe="")),
)
# Every route but the admin ones (random valid fault settings would inject faults on purpose).
_TEMPLATES = [route.template for route in ROUTES if not route.admin]


@st.composite
def _path(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        template = draw(st.sampled_from(_TEMPLATES))
        for name in ("name", "key", "version", "thread_id"):
            template = template.replace("{" + name + "}", draw(_segment))
        return template
    return "/" + quote(draw(st.text(max_size=40)), safe="/:")


_fields = st.sampled_from(
    [
        "version",
        "input_json",
        "set",
        "delete",
        "name",
        "source",
        "values",
        "to_version",
        "expected_active_version",
        "timeout_seconds",
        "resolve_env",
        "request_id",
        "nope",
    ]
)
_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_body = st.one_of(
    st.none(),
    st.binary(max_size=100),
    st.dictionaries(_fields, _json, max_size=4).map(lambda d: httpx.Request("POST", "/", json=d).content),
    _json.map(lambda v: httpx.Request("POST", "/", json=v).content),
)
# Printable ASCII without surrounding blanks: anything else the client library itself refuses to send.
_header_value = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(
    str.strip
)


@settings(FUZZ, max_examples=100)
@given(
    verb=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
    path=_path(),
    body=_body,
    auth=st.sampled_from(["good", "none", "junk"]),
    extra=st.dictionaries(
        st.sampled_from(["content-type", "x-organization-id", "accept", "x-junk"]), _header_value, max_size=2
    ),
)
def test_http_random_requests_get_proper_statuses(
    http: httpx.Client,
    intact: None,
    verb: str,
    path: str,
    body: bytes | None,
    auth: str,
    extra: dict[str, str],
) -> None:
    chosen = {"good": HEADERS, "none": {}, "junk": {"authorization": "Bearer junk"}}[auth]
    headers = {**chosen, **extra}
    response = http.request(verb, path, content=body, headers=headers)
    assert response.status_code < 500, (verb, path, body, response.status_code, response.text[:300])
    # The gateway's own verbs answer errors in its JSON shape (HEAD has no body; OPTIONS is
    # answered by Starlette's router before the gateway sees it).
    if path.startswith("/v1/") and response.status_code >= 400 and verb not in ("HEAD", "OPTIONS"):
        error = response.json()
        assert set(error) == {"code", "message"} and error["message"], error


def test_http_huge_bodies_and_paths(http_url: str, intact: None) -> None:
    url = f"{http_url}/v1/scriptum/scripts/zz-nope/threads"
    too_big = httpx.post(url, content=b"{" + b" " * (3 * 1024 * 1024) + b"}", headers=HEADERS, timeout=30)
    assert too_big.status_code == 413 and too_big.json()["code"] == "INVALID_ARGUMENT"
    long_path = httpx.get(f"{http_url}/v1/scriptum/scripts/{'a' * 60_000}", headers=HEADERS, timeout=30)
    assert 400 <= long_path.status_code < 500
