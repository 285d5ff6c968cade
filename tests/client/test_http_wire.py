"""The HTTP client's wire format against a scripted gateway on a real loopback socket.

The embedded server never sends a proxy's error page or a future field; these tests pin what the
client does when a real deployment does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.client import ClientSettings, HttpClient, RetryPolicy, ScriptumError

TOKEN = "tok-wire-91b0"


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class ScriptedGateway:
    """Answers each request with the next scripted reply and records what it received."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.seen: list[Seen] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                gateway.seen.append(Seen(self.command, self.path, headers, json.loads(raw) if raw else None))
                reply = gateway.replies.pop(0) if gateway.replies else Reply(500, "no scripted reply")
                data = reply.body.encode()
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.server.daemon_threads = True
        # A short poll interval so shutdown() returns at once instead of after half a second.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01},
                                       daemon=True)

    def __enter__(self) -> ScriptedGateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[ScriptedGateway]:
    with ScriptedGateway() as gw:
        yield gw


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(gateway: ScriptedGateway, sleeps: list[float]) -> Iterator[HttpClient]:
    settings = ClientSettings(endpoint="127.0.0.1:1", http_url=gateway.url, org="acme", token=TOKEN,
                              transport="http", retry=RetryPolicy(retries=2))
    with HttpClient(settings, sleep=sleeps.append) as c:
        yield c


def test_requests_carry_auth_path_and_proto_json_body(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies.append(Reply(200, json.dumps({"name": "inv", "active_version": 3})))
    script = client.rollback_version("inv", 3, expected_active_version=4, reason="gate failed",
                                     incident_id="INC-7")
    assert script == pb.Script(name="inv", active_version=3)
    seen = gateway.seen[0]
    assert (seen.method, seen.path) == ("POST", "/v1/scriptum/scripts/inv:rollback")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["x-organization-id"] == "acme"
    assert seen.body == {"to_version": 3, "expected_active_version": 4, "reason": "gate failed",
                         "incident_id": "INC-7"}


def test_path_parameters_are_quoted(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies.append(Reply(200, json.dumps({"thread_id": "a/b c"})))
    client.get_thread("a/b c")
    assert gateway.seen[0].path == "/v1/scriptum/threads/a%2Fb%20c"
    assert gateway.seen[0].body is None


def test_run_thread_body(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies.append(Reply(200, json.dumps({"thread_id": "t1", "status": "SUCCEEDED", "version": 2})))
    thread = client.run_thread("inv", 2, {"n": 10**20}, request_id="rid-1", timeout_s=7)
    assert (thread.thread_id, thread.status, thread.version) == ("t1", pb.SUCCEEDED, 2)
    body = gateway.seen[0].body
    assert body == {"version": 2, "input_json": '{"n": 100000000000000000000}', "resolve_env": True,
                    "request_id": "rid-1", "timeout_seconds": 7.0}


def test_unknown_response_fields_are_ignored(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies.append(Reply(200, json.dumps({"name": "inv", "added_in_v2": {"x": 1}})))
    assert client.get_script("inv") == pb.Script(name="inv")


def test_body_code_wins_over_http_status(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies.append(Reply(400, json.dumps({"code": "NOT_FOUND", "message": "script 'inv' not found"})))
    with pytest.raises(ScriptumError) as info:
        client.get_script("inv")
    assert str(info.value) == "GetScript: NOT_FOUND: script 'inv' not found"


def test_conflict_without_a_code_falls_back_to_the_status(gateway: ScriptedGateway,
                                                          client: HttpClient) -> None:
    gateway.replies.append(Reply(409, "conflict"))
    with pytest.raises(ScriptumError) as info:
        client.activate_version("inv", 2, expected_active_version=1)
    assert info.value.is_conflict
    assert "HTTP 409" in info.value.message and "conflict" in info.value.message
    assert len(gateway.seen) == 1


def test_proxy_error_pages_are_unavailable_and_retried(gateway: ScriptedGateway, client: HttpClient,
                                                       sleeps: list[float]) -> None:
    gateway.replies += [Reply(502, "<html>Bad Gateway</html>"), Reply(503, ""),
                        Reply(200, json.dumps({"scripts": [{"name": "inv"}]}))]
    assert [s.name for s in client.list_scripts()] == ["inv"]
    assert len(gateway.seen) == 3 and len(sleeps) == 2


def test_retry_after_header_is_honoured(gateway: ScriptedGateway, client: HttpClient,
                                        sleeps: list[float]) -> None:
    gateway.replies += [Reply(429, json.dumps({"code": "RESOURCE_EXHAUSTED", "message": "slow down"}),
                              {"Retry-After": "2"}),
                        Reply(200, json.dumps({"key": "K"}))]
    assert client.get_tenant_env("K").key == "K"
    assert sleeps == [2.0]


def test_unreadable_success_body_is_internal(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies.append(Reply(200, "not json"))
    with pytest.raises(ScriptumError) as info:
        client.get_script("inv")
    assert info.value.code == "INTERNAL" and "Script" in info.value.message


def test_a_token_echoed_by_a_server_is_redacted(gateway: ScriptedGateway, client: HttpClient) -> None:
    body = {"code": "UNAUTHENTICATED", "message": f"bad token {TOKEN}"}
    gateway.replies.append(Reply(401, json.dumps(body)))
    with pytest.raises(ScriptumError) as info:
        client.list_scripts()
    assert info.value.is_auth
    assert TOKEN not in str(info.value) and "***" in str(info.value)


def test_client_timeout_is_deadline_exceeded(gateway: ScriptedGateway) -> None:
    # A reply that never comes: hold the handler until the client has given up.
    release = threading.Event()
    original = gateway.server.RequestHandlerClass

    class Slow(original):  # type: ignore[misc, valid-type]
        def _answer(self) -> None:
            release.wait(10)
            try:
                super()._answer()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as intended

        do_GET = _answer

    gateway.server.RequestHandlerClass = Slow
    settings = ClientSettings(endpoint="127.0.0.1:1", http_url=gateway.url, org="acme", token=TOKEN,
                              transport="http", call_timeout_s=0.2, retry=RetryPolicy(retries=0))
    try:
        with HttpClient(settings) as client, pytest.raises(ScriptumError) as info:
            client.get_script("inv")
        assert info.value.code == "DEADLINE_EXCEEDED"
    finally:
        release.set()
