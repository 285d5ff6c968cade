"""Retries, deadlines and stream fallbacks against injected platform faults, over both transports."""

from __future__ import annotations

import json
import threading

import pytest
from kit import Platform as Admin
from kit.scripted import ClientFactory

from pytest_scriptum.client import ScriptumError


@pytest.mark.parametrize("cancellable", [False, True], ids=["plain", "cancellable"])
def test_unavailable_bursts_on_create_are_absorbed_and_the_outcome_is_unchanged(
    make_client: ClientFactory, admin: Admin, cancellable: bool
) -> None:
    client = make_client()
    cancel = threading.Event() if cancellable else None
    clean = client.run_thread("echo", 2, {"k": "v"}, cancel=cancel)
    admin.reset()
    admin.set_faults(error_next=2, error_status="UNAVAILABLE", methods=["CreateThread"])
    retried = client.run_thread("echo", 2, {"k": "v"}, cancel=cancel)
    assert (
        (retried.thread.status, retried.thread.version)
        == (clean.thread.status, clean.thread.version)
        == ("COMPLETED", 2)
    )
    assert retried.output is not None and clean.output is not None
    assert json.loads(retried.output.output_data) == json.loads(clean.output.output_data)
    stats = admin.stats()
    assert stats.calls["CreateThread"] == 3
    assert stats.runs_started == 1


def test_unavailable_bursts_on_reads_are_absorbed(make_client: ClientFactory, admin: Admin) -> None:
    client = make_client()
    client.api_info()  # descriptors first: the burst below is for the platform's own methods
    admin.set_faults(error_next=2, error_status="UNAVAILABLE", methods=["GetScript"])
    assert client.get_script("echo").active_version == 2
    assert admin.calls("GetScript") == 3


@pytest.mark.parametrize("method", ["GetScript", "CreateThread", "RollbackScript"])
def test_retries_give_up_with_a_clear_message(make_client: ClientFactory, admin: Admin, method: str) -> None:
    client = make_client()
    admin.set_faults(error_next=10, error_status="UNAVAILABLE", methods=[method])
    with pytest.raises(ScriptumError) as info:
        if method == "GetScript":
            client.get_script("echo")
        elif method == "CreateThread":
            client.run_thread("echo", 2, {})
        else:
            client.rollback_script("echo", 1, expected_active_version=2, reason="r")
    assert (info.value.code, info.value.method) == ("UNAVAILABLE", method)
    assert "gave up after 3 attempts" in str(info.value)
    stats = admin.stats()
    assert stats.calls[method] == 3
    assert stats.runs_started == 0 and stats.rollbacks_applied == 0


@pytest.mark.parametrize("code", ["NOT_FOUND", "FAILED_PRECONDITION", "INTERNAL"])
def test_other_platform_errors_are_not_retried(make_client: ClientFactory, admin: Admin, code: str) -> None:
    client = make_client()
    admin.set_faults(error_next=3, error_status=code, methods=["GetScriptVersion"])
    with pytest.raises(ScriptumError) as info:
        client.get_script_version("echo", 1)
    assert info.value.code == code and "gave up" not in str(info.value)
    assert admin.calls("GetScriptVersion") == 1


def test_a_stalled_read_is_retried_after_its_deadline(make_client: ClientFactory, admin: Admin) -> None:
    client = make_client(call_timeout_s=0.3)
    client.api_info()
    admin.set_faults(stall=True, methods=["GetScript"])
    with pytest.raises(ScriptumError) as info:
        client.get_script("echo")
    assert info.value.code == "DEADLINE_EXCEEDED"
    assert "gave up after 3 attempts" in str(info.value)
    assert admin.calls("GetScript") == 3


@pytest.mark.parametrize("method", ["CreateThread", "RollbackScript"])
def test_a_stalled_write_is_not_retried(make_client: ClientFactory, admin: Admin, method: str) -> None:
    client = make_client(call_timeout_s=0.3)
    client.api_info()
    admin.set_faults(stall=True, methods=[method])
    with pytest.raises(ScriptumError) as info:
        if method == "CreateThread":
            client.create_thread("echo", 2, {})
        else:
            client.rollback_script("echo", 2, expected_active_version=2)
    assert (info.value.code, info.value.method) == ("DEADLINE_EXCEEDED", method)
    assert "gave up" not in str(info.value)
    assert admin.calls(method) == 1


@pytest.mark.parametrize("method", ["GetScript", "CreateThread"])
def test_resource_exhausted_waits_the_servers_hint(
    make_client: ClientFactory, admin: Admin, method: str
) -> None:
    sleeps: list[float] = []
    client = make_client(sleep=sleeps.append)
    client.api_info()
    admin.set_faults(error_next=1, error_status="RESOURCE_EXHAUSTED", methods=[method])
    if method == "GetScript":
        assert client.get_script("echo").name == "echo"
    else:
        assert client.run_thread("echo", 2, {}).thread.status == "COMPLETED"
        assert admin.stats().runs_started == 1
    assert sleeps == [1.0]  # the embedded server's hint: retry-after-ms 1000 / Retry-After: 1
    assert admin.calls(method) == 2


def test_resource_exhausted_gives_up_with_the_hint_attached(make_client: ClientFactory, admin: Admin) -> None:
    sleeps: list[float] = []
    client = make_client(sleep=sleeps.append)
    client.api_info()
    admin.set_faults(error_next=5, error_status="RESOURCE_EXHAUSTED", methods=["ListScripts"])
    with pytest.raises(ScriptumError) as info:
        client.list_scripts()
    assert info.value.code == "RESOURCE_EXHAUSTED" and info.value.retry_after_s == 1.0
    assert "gave up after 3 attempts" in str(info.value)
    assert sleeps == [1.0, 1.0]


def test_a_refused_watch_falls_back_to_polling(make_client: ClientFactory, admin: Admin) -> None:
    client = make_client()
    admin.set_faults(error_rate=1.0, error_status="UNIMPLEMENTED", methods=["WatchThread"])
    run = client.run_thread("echo", 2, {"sleep_s": 0.3})
    assert run.thread.status == "COMPLETED" and run.output is not None
    assert json.loads(run.output.output_data)["version"] == 2
    stats = admin.stats()
    assert stats.calls["WatchThread"] == 1  # refused once, then never asked again for this run
    assert stats.calls["GetThread"] >= 2  # polled while it ran


def test_a_dropped_watch_is_subscribed_again(make_client: ClientFactory, admin: Admin) -> None:
    client = make_client()
    admin.set_faults(error_next=1, error_status="UNAVAILABLE", methods=["WatchThread"])
    run = client.run_thread("echo", 2, {"sleep_s": 0.2})
    assert run.thread.status == "COMPLETED"
    stats = admin.stats()
    assert stats.calls["WatchThread"] == 2 and stats.runs_started == 1


def test_a_cancelled_run_tolerates_cancel_thread_being_unimplemented(
    make_client: ClientFactory, admin: Admin
) -> None:
    client = make_client()
    admin.set_faults(error_rate=1.0, error_status="UNIMPLEMENTED", methods=["CancelThread"])
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            client.run_thread("echo", 2, {"sleep_s": 2}, timeout_s=30, cancel=cancel)
        except BaseException as exc:  # handed to the test thread below
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    admin.wait_for(lambda s: s.runs_in_flight == 1, "the run is in flight")
    cancel.set()
    runner.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], ScriptumError)
    assert outcome[0].code == "CANCELLED"
    assert "CancelThread is UNIMPLEMENTED" in outcome[0].message  # recorded, not silent
    assert admin.calls("CancelThread") == 1
