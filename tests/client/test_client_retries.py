"""Backoff bounds and the retry loop's decisions (pure logic: a scripted transport, no sockets)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from pytest_scriptum.client import ClientSettings, RetryPolicy, ScriptumError
from pytest_scriptum.client._base import ClientBase, retryable_codes, timeout_text
from pytest_scriptum.client._settings import MAX_RETRY_HINT_S
from pytest_scriptum.client._streams import Stream
from pytest_scriptum.client._wire import Wire, to_dict


@given(
    attempt=st.integers(min_value=0, max_value=200),
    base=st.floats(min_value=0, max_value=5),
    cap=st.floats(min_value=0, max_value=30),
)
def test_full_jitter_delay_is_within_bounds(attempt: int, base: float, cap: float) -> None:
    delay = RetryPolicy(base_delay_s=base, max_delay_s=cap).delay(attempt)
    assert 0.0 <= delay <= min(cap, base * 2.0**attempt)


def test_delay_grows_its_bound_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=2.0)
    # With full jitter every draw is below the bound; over many draws the maximum approaches it.
    maxima = [max(policy.delay(n) for _ in range(400)) for n in range(7)]
    bounds = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    for maximum, bound in zip(maxima, bounds, strict=True):
        assert bound * 0.8 < maximum <= bound


def test_server_hint_wins_and_is_capped() -> None:
    policy = RetryPolicy()
    assert policy.delay(0, 1.25) == 1.25
    assert policy.delay(5, 0.0) == 0.0
    assert policy.delay(0, -3.0) == 0.0
    assert policy.delay(0, 3600.0) == MAX_RETRY_HINT_S


def test_retryable_codes_per_method() -> None:
    reads = {"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}
    writes = {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}
    for method in (
        "GetScript",
        "GetThread",
        "WatchThread",
        "GetThreadResult",
        "StreamThreadResult",
        "ListScriptVersions",
        "GetEnvVar",
        "HealthCheck",
    ):
        assert retryable_codes(method) == reads, method
    for method in (
        "CreateThread",
        "TestScriptDraft",
        "RollbackScript",
        "PublishScriptDraft",
        "CancelThread",
        "ImportEnvVars",
        "UpdateScriptEnv",
    ):
        assert retryable_codes(method) == writes, method


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (60, "60s"),
        (60.0, "60s"),
        (0.5, "0.5s"),
        (1.25, "1.25s"),
        (3600, "3600s"),
        (0.001, "0.001s"),
        (2.0004, "2s"),
    ],
)
def test_timeouts_are_written_as_the_platform_reads_them(seconds: float, text: str) -> None:
    assert timeout_text(seconds) == text


class ScriptedClient(ClientBase):
    """Fails with the scripted codes, then answers with ``answers[method]``; records every request."""

    transport = "scripted"

    def __init__(
        self,
        codes: list[str],
        *,
        retries: int = 2,
        hint: float | None = None,
        answers: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.sleeps: list[float] = []
        super().__init__(
            ClientSettings(
                endpoint="127.0.0.1:1", http_url=None, org="o", token="t", retry=RetryPolicy(retries=retries)
            ),
            sleep=self.sleeps.append,
        )
        self.codes = list(codes)
        self.hint = hint
        self.answers = answers or {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.wire = Wire.bundled("scripted")

    def _wire(self, method: str) -> Wire:
        return self.wire

    def _call(self, method: str, request: Message, timeout_s: float) -> dict[str, Any]:
        self.calls.append((method, to_dict(request)))
        if self.codes:
            raise ScriptumError(self.codes.pop(0), "scripted", method, self.hint)
        return self.answers.get(method, {})

    def _open_stream(self, method: str, request: Message, timeout_s: float) -> Stream:
        raise ScriptumError("UNIMPLEMENTED", "no streams here", method)

    def _close_transport(self) -> None:
        pass

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]


def test_unavailable_is_absorbed_within_the_budget() -> None:
    client = ScriptedClient(["UNAVAILABLE", "UNAVAILABLE"], answers={"GetScript": {"name": "s"}})
    assert client.get_script("s").name == "s"
    assert client.methods() == ["GetScript"] * 3
    assert len(client.sleeps) == 2


def test_gives_up_after_the_last_attempt_saying_how_many() -> None:
    client = ScriptedClient(["UNAVAILABLE"] * 5)
    with pytest.raises(ScriptumError) as info:
        client.publish_script_draft("s")
    assert info.value.code == "UNAVAILABLE"
    assert "gave up after 3 attempts" in str(info.value)
    assert client.methods() == ["PublishScriptDraft"] * 3


def test_no_retries_says_one_attempt() -> None:
    client = ScriptedClient(["UNAVAILABLE"], retries=0)
    with pytest.raises(ScriptumError, match="gave up after 1 attempt\\)"):
        client.list_scripts()


@pytest.mark.parametrize(
    "code",
    [
        "NOT_FOUND",
        "FAILED_PRECONDITION",
        "INVALID_ARGUMENT",
        "UNAUTHENTICATED",
        "INTERNAL",
        "UNIMPLEMENTED",
        "DATA_LOSS",
    ],
)
def test_other_codes_raise_at_once(code: str) -> None:
    client = ScriptedClient([code])
    with pytest.raises(ScriptumError) as info:
        client.get_script("s")
    assert info.value.code == code and "gave up" not in str(info.value)
    assert client.methods() == ["GetScript"] and client.sleeps == []


def test_deadline_exceeded_is_retried_on_reads_only() -> None:
    read = ScriptedClient(["DEADLINE_EXCEEDED"])
    read.list_script_versions("s")
    assert read.methods() == ["ListScriptVersions"] * 2
    write = ScriptedClient(["DEADLINE_EXCEEDED"])
    with pytest.raises(ScriptumError, match="DEADLINE_EXCEEDED"):
        write.rollback_script("s", 2)
    assert write.methods() == ["RollbackScript"]
    create = ScriptedClient(["DEADLINE_EXCEEDED"])
    with pytest.raises(ScriptumError, match="DEADLINE_EXCEEDED"):
        create.create_thread("s", 2, {})
    assert create.methods() == ["CreateThread"]


def test_resource_exhausted_waits_the_hint() -> None:
    client = ScriptedClient(["RESOURCE_EXHAUSTED"], hint=0.75)
    client.get_env_var("K")
    assert client.sleeps == [0.75]


def test_retry_sleeps_follow_the_policy_bounds() -> None:
    client = ScriptedClient(["UNAVAILABLE"] * 2)
    client.get_script("s")
    assert 0 <= client.sleeps[0] <= 0.1 and 0 <= client.sleeps[1] <= 0.2


def test_create_thread_retries_reuse_one_request_id() -> None:
    client = ScriptedClient(
        ["UNAVAILABLE", "RESOURCE_EXHAUSTED"], answers={"CreateThread": {"thread_id": "t1"}}
    )
    assert client.create_thread("s", 3, {"a": 1}, timeout_s=7.5, metadata={"team": "x"}) == "t1"
    sent = [request for _, request in client.calls]
    assert len(sent) == 3 and sent[0] == sent[1] == sent[2]
    request_id = sent[0]["metadata"]["scriptum.request_id"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0
    assert sent[0] == {
        "script_name": "s",
        "version": 3,
        "input_json": '{"a": 1}',
        "timeout": "7.5s",
        "load_env": True,
        "metadata": {"team": "x", "scriptum.request_id": request_id},
    }
    given_id = ScriptedClient([], answers={"CreateThread": {"thread_id": "t2"}})
    given_id.create_thread("s", 3, None, request_id="mine", load_env=False)
    assert given_id.calls[0][1]["metadata"] == {"scriptum.request_id": "mine"}
    assert "load_env" not in given_id.calls[0][1]  # proto3: a false bool is simply absent


def test_a_create_answer_without_a_thread_id_is_internal() -> None:
    client = ScriptedClient([])
    with pytest.raises(ScriptumError) as info:
        client.create_thread("s", 1, {})
    assert info.value.code == "INTERNAL" and info.value.method == "CreateThread"


def test_draft_runs_use_test_script_draft() -> None:
    client = ScriptedClient([], answers={"TestScriptDraft": {"thread_id": "t9"}})
    assert client.test_script_draft("s", {"x": 1}, timeout_s=2) == "t9"
    method, request = client.calls[0]
    assert method == "TestScriptDraft" and request["name"] == "s" and request["timeout"] == "2s"
    assert "scriptum.request_id" in request["metadata"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.create_thread("s", 3, float("nan")), "input of the run of s v3 is not JSON"),
        (lambda c: c.create_thread("s", 3, {1, 2}), "not JSON-serialisable"),
        (lambda c: c.create_thread("s", 0, {}), "always pinned"),
        (lambda c: c.create_thread("s", True, {}), "always pinned"),
        (lambda c: c.create_thread("s", 1, {}, timeout_s=0), "timeout_s"),
        (lambda c: c.create_thread("s", 1, {}, timeout_s=4000), "timeout_s"),
        (lambda c: c.create_thread("", 1, {}), "script name"),
        (lambda c: c.create_thread("s", 1, {}, metadata={"k": 1}), "metadata"),
        (lambda c: c.run_thread("s", 0, {}), "always pinned"),
        (lambda c: c.get_script_version("s", 0), "version"),
        (lambda c: c.rollback_script("s", -1), "to_version"),
        (lambda c: c.rollback_script("s", 3, expected_active_version=-2), "expected_active_version"),
        (lambda c: c.update_script_env("s", delete="KEY"), "sequence of keys"),
        (lambda c: c.update_script_env("s", set={"K": 1}), "set must map"),
        (lambda c: c.import_env_vars({"": "v"}), "values must map"),
        (lambda c: c.save_script_draft("s"), "dsl_content or ir_yaml"),
        (lambda c: c.list_threads(status="SUCCEEDED"), "status must be one of"),
        (lambda c: c.resume_thread("t", float("inf")), "answer to thread t"),
        (lambda c: c.watch_thread("t", timeout_s=-1), "timeout_s of the watch"),
    ],
)
def test_bad_arguments_are_value_errors_before_any_call(
    call: Callable[[ScriptedClient], object], message: str
) -> None:
    client = ScriptedClient([])
    with pytest.raises(ValueError, match=message):
        call(client)
    assert client.calls == []


def test_a_set_cancel_event_stops_a_run_before_it_starts() -> None:
    client = ScriptedClient([])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ScriptumError) as info:
        client.run_thread("s", 1, {}, cancel=cancel)
    assert info.value.code == "CANCELLED" and client.calls == []


def test_cancel_during_backoff_stops_the_retries() -> None:
    cancel = threading.Event()
    client = ScriptedClient(["UNAVAILABLE"] * 2)
    client._sleep = lambda _delay: cancel.set()
    with pytest.raises(ScriptumError) as info:
        client.run_thread("s", 1, {}, cancel=cancel)
    assert info.value.code == "CANCELLED"
    assert client.methods() == ["CreateThread"]


def test_list_calls_follow_page_tokens_and_stop_on_a_repeated_one() -> None:
    pages = [
        {"scripts": [{"name": "a"}], "next_page_token": "p2"},
        {"scripts": [{"name": "b"}], "next_page_token": "p3"},
        {"scripts": [{"name": "c"}], "next_page_token": "p2"},
    ]  # a token that does not progress

    class Paged(ScriptedClient):
        def _call(self, method: str, request: Message, timeout_s: float) -> dict[str, Any]:
            self.calls.append((method, to_dict(request)))
            return pages[len(self.calls) - 1]

    client = Paged([])
    assert [s.name for s in client.list_scripts()] == ["a", "b", "c"]
    assert [r.get("page_token", "") for _, r in client.calls] == ["", "p2", "p3"]


def test_records_strip_enum_prefixes_and_read_int64_strings() -> None:
    client = ScriptedClient(
        [],
        answers={
            "GetThread": {
                "thread_id": "t",
                "status": "THREAD_STATUS_PAUSED",
                "version": 3,
                "created_at_ms": "1700000000000",
                "pending_ask": {"step_path": "2", "label": "approve", "options": ["yes", "no"]},
            }
        },
    )
    thread = client.get_thread("t")
    assert (thread.status, thread.settled, thread.terminal, thread.created_at_ms) == (
        "PAUSED",
        True,
        False,
        1_700_000_000_000,
    )
    assert thread.pending_ask is not None and thread.pending_ask.options == ("yes", "no")
