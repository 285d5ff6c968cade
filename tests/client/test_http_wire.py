"""The HTTP client's wire format against a scripted gateway on a real loopback socket.

The embedded server never sends a proxy's error page, a future field or a broken stream; these
tests pin what the client does when a real deployment does.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from kit import TOKEN
from kit.scripted import Reply, ScriptedGateway, ndjson

from pytest_scriptum.client import ClientSettings, HttpClient, RetryPolicy, ScriptumError


@pytest.fixture
def gateway() -> Iterator[ScriptedGateway]:
    with ScriptedGateway() as gw:
        yield gw


@pytest.fixture
def sleeps() -> list[float]:
    return []


def http_settings(url: str, **overrides: object) -> ClientSettings:
    values: dict[str, object] = {
        "endpoint": "127.0.0.1:1",
        "http_url": url,
        "org": "acme",
        "token": TOKEN,
        "transport": "http",
        "retry": RetryPolicy(retries=2),
    }
    values.update(overrides)
    return ClientSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(gateway: ScriptedGateway, sleeps: list[float]) -> Iterator[HttpClient]:
    with HttpClient(http_settings(gateway.url), sleep=sleeps.append) as c:
        yield c


def test_requests_carry_auth_path_and_pbjson_body(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies.append(
        Reply(
            200,
            json.dumps(
                {
                    "script": {"name": "inv", "activeVersion": 3},
                    "previousActiveVersion": 4,
                    "activeVersion": 3,
                }
            ),
        )
    )
    result = client.rollback_script(
        "inv", 3, expected_active_version=4, reason="gate failed", incident_id="INC-7", rollback_id="rb-1"
    )
    assert (result.active_version, result.previous_active_version, result.script.name) == (3, 4, "inv")
    seen = gateway.seen[0]
    assert (seen.method, seen.path) == ("POST", "/v1/scriptum/scripts/inv/rollback")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["x-organization-id"] == "acme" and "x-organization-name" not in seen.headers
    assert seen.body == {
        "toVersion": 3,
        "expectedActiveVersion": 4,
        "reason": "gate failed",
        "incidentId": "INC-7",
        "rollbackId": "rb-1",
    }


def test_the_org_name_header_is_sent_when_configured(gateway: ScriptedGateway) -> None:
    gateway.replies.append(Reply(200, json.dumps({"status": "SERVING"})))
    with HttpClient(http_settings(gateway.url, org="", org_name="Acme Inc")) as c:
        assert c.health().status == "SERVING"
    headers = gateway.seen[0].headers
    assert headers["x-organization-name"] == "Acme Inc" and "x-organization-id" not in headers


def test_create_thread_body_is_the_documented_one(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies.append(Reply(200, json.dumps({"threadId": "thr_1", "status": "THREAD_STATUS_PENDING"})))
    assert client.create_thread("inv", 2, {"n": 10**20}, request_id="rid-1", timeout_s=7) == "thr_1"
    seen = gateway.seen[0]
    assert (seen.method, seen.path) == ("POST", "/v1/scriptum/threads")
    assert seen.body == {
        "scriptName": "inv",
        "version": 2,
        "inputJson": '{"n": 100000000000000000000}',
        "timeout": "7s",
        "metadata": {"scriptum.request_id": "rid-1"},
        "loadEnv": True,
    }


def test_get_requests_have_query_parameters_and_no_body(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies.append(
        Reply(
            200,
            json.dumps(
                {
                    "threads": [
                        {"threadId": "a", "status": "THREAD_STATUS_FAILED", "createdAtMs": "1700000000000"}
                    ]
                }
            ),
        )
    )
    threads = client.list_threads(script_name="inv", status="FAILED")
    assert [(t.thread_id, t.status, t.created_at_ms) for t in threads] == [("a", "FAILED", 1_700_000_000_000)]
    seen = gateway.seen[0]
    assert seen.method == "GET" and seen.body is None
    path, _, query = seen.path.partition("?")
    assert path == "/v1/scriptum/threads"
    assert parse_qs(query) == {"scriptNameFilter": ["inv"], "statusFilter": ["THREAD_STATUS_FAILED"]}


def test_path_parameters_are_quoted(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies.append(Reply(200, json.dumps({"threadId": "a/b c"})))
    client.get_thread("a/b c")
    assert gateway.seen[0].path == "/v1/scriptum/threads/a%2Fb%20c"
    assert gateway.seen[0].body is None


def test_unknown_response_fields_are_ignored_and_snake_case_read(
    gateway: ScriptedGateway, client: HttpClient
) -> None:
    gateway.replies.append(
        Reply(200, json.dumps({"name": "inv", "active_version": 2, "addedInV2": {"x": 1}}))
    )
    assert client.get_script("inv").active_version == 2


@pytest.mark.parametrize(
    "body",
    [
        {"code": 5, "status": "NOT_FOUND", "message": "script 'inv' not found"},
        {"code": 5, "message": "script 'inv' not found"},
        {"code": "NOT_FOUND", "message": "script 'inv' not found"},
        {"status": "NOT_FOUND", "message": "script 'inv' not found"},
    ],
)
def test_body_code_wins_over_http_status(
    gateway: ScriptedGateway, client: HttpClient, body: dict[str, object]
) -> None:
    gateway.replies.append(Reply(400, json.dumps(body)))
    with pytest.raises(ScriptumError) as info:
        client.get_script("inv")
    assert str(info.value) == "GetScript: NOT_FOUND: script 'inv' not found"


def test_conflict_without_a_code_falls_back_to_the_status(
    gateway: ScriptedGateway, client: HttpClient
) -> None:
    gateway.replies.append(Reply(409, "conflict"))
    with pytest.raises(ScriptumError) as info:
        client.rollback_script("inv", 2, expected_active_version=1)
    assert info.value.is_conflict
    assert "HTTP 409" in info.value.message and "conflict" in info.value.message
    assert len(gateway.seen) == 1


def test_proxy_error_pages_are_unavailable_and_retried(
    gateway: ScriptedGateway, client: HttpClient, sleeps: list[float]
) -> None:
    gateway.replies += [
        Reply(502, "<html>Bad Gateway</html>"),
        Reply(503, ""),
        Reply(200, json.dumps({"scripts": [{"name": "inv"}]})),
    ]
    assert [s.name for s in client.list_scripts()] == ["inv"]
    assert len(gateway.seen) == 3 and len(sleeps) == 2


def test_retry_after_header_is_honoured(
    gateway: ScriptedGateway, client: HttpClient, sleeps: list[float]
) -> None:
    gateway.replies += [
        Reply(
            429,
            json.dumps({"code": 8, "status": "RESOURCE_EXHAUSTED", "message": "slow down"}),
            {"Retry-After": "2"},
        ),
        Reply(200, json.dumps({"key": "K", "value": "v"})),
    ]
    assert client.get_env_var("K").key == "K"
    assert sleeps == [2.0]


def test_unreadable_success_body_is_internal(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies.append(Reply(200, "not json"))
    with pytest.raises(ScriptumError) as info:
        client.get_script("inv")
    assert info.value.code == "INTERNAL" and "Script" in info.value.message


def test_a_token_echoed_by_a_server_is_redacted(gateway: ScriptedGateway, client: HttpClient) -> None:
    body = {"code": 16, "status": "UNAUTHENTICATED", "message": f"bad token {TOKEN}"}
    gateway.replies.append(Reply(401, json.dumps(body)))
    with pytest.raises(ScriptumError) as info:
        client.list_scripts()
    assert info.value.is_auth
    assert TOKEN not in str(info.value) and "***" in str(info.value)


def test_client_timeout_is_deadline_exceeded(gateway: ScriptedGateway) -> None:
    release = threading.Event()  # a reply that never comes until the client has given up
    gateway.replies.append(Reply(200, "{}", hold=release))
    try:
        with (
            HttpClient(http_settings(gateway.url, call_timeout_s=0.2, retry=RetryPolicy(retries=0))) as c,
            pytest.raises(ScriptumError) as info,
        ):
            c.get_script("inv")
        assert (info.value.code, info.value.method) == ("DEADLINE_EXCEEDED", "GetScript")
    finally:
        release.set()


# ---- server streams: newline-delimited JSON ----------------------------------------------------------


def _thread(status: str, **extra: object) -> dict[str, object]:
    return {
        "threadId": "thr_1",
        "status": f"THREAD_STATUS_{status}",
        "scriptName": "inv",
        "version": 4,
        **extra,
    }


def test_watch_reads_events_until_the_thread_settles(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies.append(
        Reply(
            200,
            "",
            lines=ndjson(
                {"type": "THREAD_EVENT_TYPE_STATUS", "thread": _thread("RUNNING")},
                {
                    "type": "THREAD_EVENT_TYPE_STEP_STARTED",
                    "thread": _thread("RUNNING"),
                    "step": {"path": "1"},
                },
                {
                    "type": "THREAD_EVENT_TYPE_STATUS",
                    "thread": _thread("FAILED", errorCode="SCRIPT_ERROR", error="boom"),
                },
            ),
        )
    )
    thread = client.watch_thread("thr_1", timeout_s=30)
    assert (thread.status, thread.error_code, thread.platform_fault, thread.version) == (
        "FAILED",
        "SCRIPT_ERROR",
        False,
        4,
    )
    assert (gateway.seen[0].method, gateway.seen[0].path) == ("GET", "/v1/scriptum/threads/thr_1/watch")


def test_an_error_line_ends_the_stream_with_that_error(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies.append(
        Reply(
            200,
            "",
            lines=ndjson(
                {"thread": _thread("RUNNING")},
                error={"code": 5, "status": "NOT_FOUND", "message": "thread gone"},
            ),
        )
    )
    with pytest.raises(ScriptumError) as info:
        client.watch_thread("thr_1", timeout_s=30)
    assert (info.value.code, info.value.method, info.value.message) == (
        "NOT_FOUND",
        "WatchThread",
        "thread gone",
    )


def test_a_dropped_stream_is_subscribed_again(
    gateway: ScriptedGateway, client: HttpClient, sleeps: list[float]
) -> None:
    gateway.replies += [
        Reply(200, "", lines=ndjson({"thread": _thread("RUNNING")})),  # ends before the thread settled
        Reply(
            200,
            "",
            lines=ndjson(
                {"thread": _thread("RUNNING")},
                error={"code": 14, "status": "UNAVAILABLE", "message": "restarting"},
            ),
        ),
        Reply(200, "", lines=ndjson({"thread": _thread("COMPLETED")})),
    ]
    assert client.watch_thread("thr_1", timeout_s=30).status == "COMPLETED"
    assert [s.path for s in gateway.seen] == ["/v1/scriptum/threads/thr_1/watch"] * 3
    assert len(sleeps) == 2


def test_a_refused_watch_falls_back_to_polling(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies += [
        Reply(501, json.dumps({"code": 12, "status": "UNIMPLEMENTED", "message": "no streams here"})),
        Reply(200, json.dumps(_thread("RUNNING"))),
        Reply(200, json.dumps(_thread("PAUSED", pendingAsk={"label": "approve"}))),
    ]
    thread = client.watch_thread("thr_1", timeout_s=30)
    assert thread.status == "PAUSED" and thread.pending_ask is not None
    assert [s.path for s in gateway.seen] == ["/v1/scriptum/threads/thr_1/watch"] + [
        "/v1/scriptum/threads/thr_1"
    ] * 2


def test_a_watch_past_its_deadline_cancels_the_thread(gateway: ScriptedGateway) -> None:
    release = threading.Event()  # the stream opens, then stays silent
    gateway.replies += [
        Reply(200, "", lines=ndjson({"thread": _thread("RUNNING")}), gate=release),
        Reply(200, json.dumps(_thread("RUNNING"))),
        Reply(200, json.dumps(_thread("CANCELLED"))),
    ]
    try:
        with (
            HttpClient(http_settings(gateway.url, run_deadline_margin_s=0.2)) as c,
            pytest.raises(ScriptumError) as info,
        ):
            c.watch_thread("thr_1", timeout_s=0.1)
    finally:
        release.set()
    assert info.value.code == "DEADLINE_EXCEEDED" and "still RUNNING" in info.value.message
    assert "thr_1 cancelled" in info.value.message
    assert [(s.method, s.path) for s in gateway.seen] == [
        ("GET", "/v1/scriptum/threads/thr_1/watch"),
        ("GET", "/v1/scriptum/threads/thr_1"),
        ("POST", "/v1/scriptum/threads/thr_1/cancel"),
    ]


def test_a_truncated_output_is_streamed_and_reassembled(gateway: ScriptedGateway, client: HttpClient) -> None:
    data = bytes(range(256)) * 1000
    parts = [data[:100_000], data[100_000:200_000], data[200_000:]]
    gateway.replies += [
        Reply(
            200,
            json.dumps(
                {
                    "outputData": base64.b64encode(data[:10]).decode(),
                    "outputTotalBytes": str(len(data)),
                    "outputTruncated": True,
                    "steps": [{"path": "1", "name": "a"}],
                }
            ),
        ),
        Reply(
            200,
            "",
            lines=ndjson(
                {"meta": {"threadId": "thr_1", "outputTotalBytes": str(len(data)), "chunkCount": 3}},
                # Out of order on purpose: the client orders by chunk_index.
                {"chunk": {"chunkIndex": 1, "data": base64.b64encode(parts[1]).decode()}},
                {"chunk": {"chunkIndex": 0, "data": base64.b64encode(parts[0]).decode()}},
                {"chunk": {"chunkIndex": 2, "data": base64.b64encode(parts[2]).decode(), "isFinal": True}},
            ),
        ),
    ]
    output = client.get_thread_result("thr_1")
    assert output.output_data == data and output.streamed and output.output_total_bytes == len(data)
    assert [s.path for s in output.steps] == ["1"]
    assert gateway.seen[1].path == "/v1/scriptum/threads/thr_1/result/stream"


def test_the_result_is_read_as_metadata_then_output(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies += [
        Reply(200, json.dumps({"outputTotalBytes": "11", "steps": [{"path": "1", "name": "a"}]})),
        Reply(200, json.dumps({"outputData": base64.b64encode(b'{"ok": true}'[:11]).decode(),
                               "outputTotalBytes": "11"})),
    ]
    output = client.get_thread_result("thr_1")
    assert output.output_data == b'{"ok": true}'[:11] and not output.streamed
    assert [s.path for s in output.steps] == ["1"]  # from the metadata answer
    assert [s.path for s in gateway.seen] == [
        "/v1/scriptum/threads/thr_1/result?metadataOnly=true",
        "/v1/scriptum/threads/thr_1/result?outputOnly=true",
    ]


def test_an_output_answer_cut_after_all_is_streamed(gateway: ScriptedGateway, client: HttpClient) -> None:
    # A platform whose metadata answer does not say the output is over the unary cap (the docs do
    # not promise that it does): the cut output answer is dropped and the stream read instead.
    data = b"y" * 300
    gateway.replies += [
        Reply(200, json.dumps({"outputTotalBytes": str(len(data))})),
        Reply(200, json.dumps({"outputData": base64.b64encode(data[:100]).decode(),
                               "outputTotalBytes": str(len(data)), "outputTruncated": True})),
        Reply(200, "", lines=ndjson(
            {"meta": {"outputTotalBytes": str(len(data)), "chunkCount": 1}},
            {"chunk": {"chunkIndex": 0, "data": base64.b64encode(data).decode(), "isFinal": True}},
        )),
    ]
    output = client.get_thread_result("thr_1")
    assert output.output_data == data and output.streamed
    assert gateway.seen[2].path == "/v1/scriptum/threads/thr_1/result/stream"


def test_a_chunk_missing_from_the_stream_is_data_loss(gateway: ScriptedGateway, client: HttpClient) -> None:
    gateway.replies += [
        Reply(200, json.dumps({"outputTotalBytes": "20", "outputTruncated": True})),
        Reply(
            200,
            "",
            lines=ndjson(
                {"meta": {"outputTotalBytes": "20"}},
                {"chunk": {"chunkIndex": 0, "data": base64.b64encode(b"x" * 10).decode()}},
                {"chunk": {"chunkIndex": 2, "data": base64.b64encode(b"x" * 10).decode(), "isFinal": True}},
            ),
        ),
    ]
    with pytest.raises(ScriptumError) as info:
        client.get_thread_result("thr_1")
    assert info.value.code == "DATA_LOSS" and "chunk 1 is missing" in info.value.message


def test_a_cancel_event_aborts_a_silent_watch_and_cancels_the_thread(
    gateway: ScriptedGateway, client: HttpClient
) -> None:
    release = threading.Event()
    gateway.replies += [
        Reply(200, "", lines=ndjson({"thread": _thread("RUNNING")}) * 2, gate=release),
        Reply(200, json.dumps(_thread("CANCELLED"))),
    ]
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def watch() -> None:
        try:
            client.watch_thread("thr_1", timeout_s=60, cancel=cancel)
        except BaseException as exc:  # handed to the test thread below
            outcome.append(exc)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(500):  # the watch request has arrived: the stream is open and silent
            if gateway.seen:
                break
            release.wait(0.01)
        cancel.set()
        watcher.join(timeout=10)
        assert not watcher.is_alive()
    finally:
        release.set()
    assert len(outcome) == 1 and isinstance(outcome[0], ScriptumError)
    assert outcome[0].code == "CANCELLED" and "thr_1 cancelled" in outcome[0].message
    assert (gateway.seen[-1].method, gateway.seen[-1].path) == ("POST", "/v1/scriptum/threads/thr_1/cancel")
