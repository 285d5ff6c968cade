"""The embedded server fed random and malformed requests over real sockets: every answer is a
proper status (never INTERNAL / 5xx for a client's mistake), the server stays up, and the state
a release depends on (calc's versions, active version, history, overlay, tenant env) is intact.
Every RPC of both services is fuzzed over gRPC (server streams as streams), and every HTTP route
the proto declares (read from its google.api.http annotations) over the gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import pytest
from google.api import annotations_pb2  # type: ignore[import-untyped]  # no stubs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import ORG, TOKEN, auth
from kit.seeds.doubles import SCRIPT, calc_platform

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServer

AUTH = auth(TOKEN, ORG)
HEADERS = dict(AUTH)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_SERVICE = pb.DESCRIPTOR.services_by_name["ScriptumService"]
_services = [_SERVICE, pb.DESCRIPTOR.services_by_name["ScriptumDevAdmin"]]
# SetFaults with random (valid) settings would inject faults on purpose: not a client mistake.
METHODS = [
    (service.full_name, method)
    for service in _services
    for method in service.methods
    if method.name != "SetFaults"
]
STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
# The documented unauthenticated methods: without a token they still answer.
PUBLIC = {"HealthCheck", "ListTemplates", "GetTemplate"}
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
    pb.CreateThreadRequest(script_name="zz-nope", version=7, input_json="{", timeout="-1s"),
    pb.ImportEnvVarsRequest(vars={"bad key": "v"}, content="=\nA B=c"),
    pb.UpdateScriptEnvRequest(name="zz-nope", set={"": "v"}, delete=["\x00"]),
    pb.RollbackScriptRequest(name="zz-nope", to_version=-1, expected_active_version=-5),
    pb.StreamThreadResultRequest(thread_id="zz-nope", max_chunk_bytes=-1),
    pb.ResumeThreadRequest(thread_id="zz-nope", step_input_override_json="{"),
    pb.Script(name="x", active_version=3),
]


TENANT_KEYS = ("REGION", "API_KEY")


def _fingerprint(channel: grpc.Channel) -> tuple[bytes, ...]:
    api = pb_grpc.ScriptumServiceStub(channel)
    answers = [
        api.GetScript(pb.GetScriptRequest(name=SCRIPT), metadata=AUTH, timeout=10),
        api.ListScriptVersions(pb.ListScriptVersionsRequest(name=SCRIPT), metadata=AUTH, timeout=10),
        api.GetScriptEnv(pb.GetScriptEnvRequest(name=SCRIPT), metadata=AUTH, timeout=10),
        *(api.GetEnvVar(pb.GetEnvVarRequest(key=key), metadata=AUTH, timeout=10) for key in TENANT_KEYS),
    ]
    return tuple(answer.SerializeToString(deterministic=True) for answer in answers)


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
def intact(channel: grpc.Channel, http_url: str, _shared_server: DevServer) -> Iterator[None]:
    """After every test of the module: state unchanged, health serving, a real run still works."""
    before = _fingerprint(channel)
    yield
    assert _fingerprint(channel) == before
    assert httpx.get(f"{http_url}/health", timeout=10).status_code == 200
    platform = calc_platform(_shared_server.addresses.grpc, http_url)
    try:
        thread, result = platform.run(SCRIPT, 1, {"x": 2})
    finally:
        platform.close()
    assert thread.status == pb.THREAD_STATUS_COMPLETED, (thread.error_code, thread.error)
    assert json.loads(result.output_data) == {"doubled": 4, "version": 1}


def _raw_call(
    channel: grpc.Channel, path: str, payload: bytes, metadata: Any, *, streaming: bool = False
) -> grpc.StatusCode:
    """Send ``payload`` as the serialized request of ``path``; the status it ends with."""
    try:
        if streaming:
            stream = channel.unary_stream(path, request_serializer=bytes, response_deserializer=bytes)
            for _ in stream(payload, metadata=metadata, timeout=10):
                pass
        else:
            unary = channel.unary_unary(path, request_serializer=bytes, response_deserializer=bytes)
            unary(payload, metadata=metadata, timeout=10)
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
    path = f"/{service}/{method.name}"
    code = _raw_call(channel, path, payload, AUTH if authenticated else (), streaming=method.server_streaming)
    assert code in CLIENT_MISTAKES, (method.name, payload)
    if not authenticated and method.name not in PUBLIC:
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
    st.sampled_from(
        ["zz-nope", "1", "0", "-1", "1.0.2", "99999999999", "thr_x", "UNKNOWN_KEY", "..", "%00", "a%2Fb"]
    ),
    st.text(min_size=1, max_size=20).filter(lambda s: s != SCRIPT).map(lambda s: quote(s, safe="")),
)


def _templates() -> list[str]:
    """Every HTTP path template of ScriptumService, from the proto's google.api.http annotations,
    plus the gateway's management routes."""
    found = ["/health", "/ready", "/metrics"]
    for method in _SERVICE.methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        for binding in (rule, *rule.additional_bindings):
            found.append(getattr(binding, str(binding.WhichOneof("pattern"))))
    return sorted(set(found))


_TEMPLATES = _templates()


@st.composite
def _path(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        template = draw(st.sampled_from(_TEMPLATES))
        for name in ("name", "key", "version", "thread_id", "step_path", "id"):
            template = template.replace("{" + name + "}", draw(_segment))
        query = draw(st.sampled_from(["", "?pageSize=-1", "?page_size=x", "?stepPath=%00", "?nope=1"]))
        return template + query
    return "/" + quote(draw(st.text(max_size=40)), safe="/:")


# Field names of the documented requests, in both spellings pbjson accepts, and one that is none.
_fields = st.sampled_from(
    [
        "script_name",
        "scriptName",
        "version",
        "input_json",
        "inputJson",
        "timeout",
        "load_env",
        "loadEnv",
        "metadata",
        "set",
        "delete",
        "name",
        "dsl_content",
        "vars",
        "content",
        "to_version",
        "toVersion",
        "expected_active_version",
        "step_input_override_json",
        "maxChunkBytes",
        "key",
        "value",
        "nope",
    ]
)
_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),  # what a JSON encoder can write
        st.text(max_size=10),
    ),
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
        st.sampled_from(["content-type", "x-organization-id", "x-organization-name", "accept", "x-junk"]),
        _header_value,
        max_size=2,
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
    # answered by the web framework's router before the gateway sees it).
    if path.startswith("/v1/") and response.status_code >= 400 and verb not in ("HEAD", "OPTIONS"):
        error = response.json()
        assert {"code", "status", "message"} <= set(error) and error["message"], error
        assert STATUS_NAMES.get(error["code"]) == error["status"], error  # a gRPC code and its name


def test_http_huge_bodies_and_paths(http_url: str, intact: None) -> None:
    url = f"{http_url}/v1/scriptum/threads"
    too_big = httpx.post(url, content=b"{" + b" " * (5 * 1024 * 1024) + b"}", headers=HEADERS, timeout=30)
    assert too_big.status_code == 413, too_big.text[:300]
    assert {"code", "status", "message"} <= set(too_big.json())
    long_path = httpx.get(f"{http_url}/v1/scriptum/scripts/{'a' * 60_000}", headers=HEADERS, timeout=30)
    assert 400 <= long_path.status_code < 500
