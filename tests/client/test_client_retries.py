"""Backoff bounds and the retry loop's decisions (pure logic: a scripted transport, no sockets)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.client import ClientSettings, RetryPolicy, ScriptumError
from pytest_scriptum.client._base import ClientBase, M, retryable_codes
from pytest_scriptum.client._settings import MAX_RETRY_HINT_S


@given(attempt=st.integers(min_value=0, max_value=200),
       base=st.floats(min_value=0, max_value=5), cap=st.floats(min_value=0, max_value=30))
def test_full_jitter_delay_is_within_bounds(attempt: int, base: float, cap: float) -> None:
    delay = RetryPolicy(base_delay_s=base, max_delay_s=cap).delay(attempt)
    assert 0.0 <= delay <= min(cap, base * 2.0 ** attempt)


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
    assert retryable_codes("GetScript") == {"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}
    assert retryable_codes("GetThread") == {"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}
    assert retryable_codes("RunThread") == {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}
    assert retryable_codes("RollbackVersion") == {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}
    assert retryable_codes("PublishDraft") == {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}


class ScriptedClient(ClientBase):
    """Fails with the scripted codes, then answers; records what it was asked."""

    transport = "scripted"

    def __init__(self, codes: list[str], *, retries: int = 2, hint: float | None = None) -> None:
        self.sleeps: list[float] = []
        super().__init__(ClientSettings(endpoint="127.0.0.1:1", http_url=None, org="o", token="t",
                                        retry=RetryPolicy(retries=retries)), sleep=self.sleeps.append)
        self.codes = list(codes)
        self.hint = hint
        self.calls: list[str] = []

    def _call(self, method: str, request: Message, response: type[M], timeout_s: float) -> M:
        self.calls.append(method)
        if self.codes:
            raise ScriptumError(self.codes.pop(0), "scripted", method, self.hint)
        return response()

    def _run_thread(self, request: pb.RunThreadRequest, cancel: threading.Event | None) -> pb.Thread:
        self.calls.append(request.request_id)
        return self._retrying("RunThread", lambda: self._call("RunThread", request, pb.Thread, 1.0),
                              cancel=cancel)

    def close(self) -> None:
        pass


def test_unavailable_is_absorbed_within_the_budget() -> None:
    client = ScriptedClient(["UNAVAILABLE", "UNAVAILABLE"])
    assert client.get_script("s") == pb.Script()
    assert client.calls == ["GetScript"] * 3
    assert len(client.sleeps) == 2


def test_gives_up_after_the_last_attempt_saying_how_many() -> None:
    client = ScriptedClient(["UNAVAILABLE"] * 5)
    with pytest.raises(ScriptumError) as info:
        client.publish_draft("s")
    assert info.value.code == "UNAVAILABLE"
    assert "gave up after 3 attempts" in str(info.value)
    assert client.calls == ["PublishDraft"] * 3


def test_no_retries_says_one_attempt() -> None:
    client = ScriptedClient(["UNAVAILABLE"], retries=0)
    with pytest.raises(ScriptumError, match="gave up after 1 attempt\\)"):
        client.list_scripts()


@pytest.mark.parametrize("code", ["NOT_FOUND", "FAILED_PRECONDITION", "INVALID_ARGUMENT", "UNAUTHENTICATED",
                                  "INTERNAL"])
def test_other_codes_raise_at_once(code: str) -> None:
    client = ScriptedClient([code])
    with pytest.raises(ScriptumError) as info:
        client.get_script("s")
    assert info.value.code == code and "gave up" not in str(info.value)
    assert client.calls == ["GetScript"] and client.sleeps == []


def test_deadline_exceeded_is_retried_on_reads_only() -> None:
    read = ScriptedClient(["DEADLINE_EXCEEDED"])
    read.list_versions("s")
    assert read.calls == ["ListVersions"] * 2
    write = ScriptedClient(["DEADLINE_EXCEEDED"])
    with pytest.raises(ScriptumError, match="DEADLINE_EXCEEDED"):
        write.activate_version("s", 2)
    assert write.calls == ["ActivateVersion"]


def test_resource_exhausted_waits_the_hint() -> None:
    client = ScriptedClient(["RESOURCE_EXHAUSTED"], hint=0.75)
    client.get_tenant_env("K")
    assert client.sleeps == [0.75]


def test_retry_sleeps_follow_the_policy_bounds() -> None:
    client = ScriptedClient(["UNAVAILABLE"] * 2)
    client.get_script("s")
    assert 0 <= client.sleeps[0] <= 0.1 and 0 <= client.sleeps[1] <= 0.2


def test_run_thread_generates_one_request_id_and_validates_arguments() -> None:
    client = ScriptedClient(["UNAVAILABLE"])
    client.run_thread("s", 3, {"a": 1})
    request_id = client.calls[0]
    assert len(request_id) == 32 and int(request_id, 16) >= 0
    given_id = ScriptedClient([])
    given_id.run_thread("s", 3, None, request_id="mine")
    assert given_id.calls[0] == "mine"


@pytest.mark.parametrize(("call", "message"), [
    (lambda c: c.run_thread("s", 3, float("nan")), "input of the run of s v3 is not JSON"),
    (lambda c: c.run_thread("s", 3, {1, 2}), "not JSON-serialisable"),
    (lambda c: c.run_thread("s", 0, {}), "always pinned"),
    (lambda c: c.run_thread("s", 1, {}, timeout_s=0), "timeout_s"),
    (lambda c: c.run_thread("s", 1, {}, timeout_s=4000), "timeout_s"),
    (lambda c: c.run_thread("", 1, {}), "script name"),
    (lambda c: c.get_version("s", -1), "version"),
    (lambda c: c.rollback_version("s", 3, expected_active_version=0, reason="r"), "expected_active_version"),
    (lambda c: c.update_script_env("s", delete="KEY"), "sequence of keys"),
    (lambda c: c.create_draft("s", "src", input_schema={"x": float("inf")}), "input_schema of s"),
])
def test_bad_arguments_are_value_errors_before_any_call(call: Callable[[ScriptedClient], object],
                                                        message: str) -> None:
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
    assert client.calls.count("RunThread") == 1
