"""Retries and deadlines against injected platform faults, over both transports."""

from __future__ import annotations

import json
import threading

import pytest
from client_testkit import ClientFactory
from helpers import Platform

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.client import ScriptumError


@pytest.mark.parametrize("cancellable", [False, True], ids=["blocking", "cancellable"])
def test_unavailable_bursts_on_runs_are_absorbed_and_the_verdict_is_unchanged(
        make_client: ClientFactory, admin: Platform, cancellable: bool) -> None:
    client = make_client()
    cancel = threading.Event() if cancellable else None
    clean = client.run_thread("echo", 2, {"k": "v"}, cancel=cancel)
    admin.reset()
    admin.set_faults(error_next=2, error_status="UNAVAILABLE", methods=["RunThread"])
    retried = client.run_thread("echo", 2, {"k": "v"}, cancel=cancel)
    assert (retried.status, retried.version) == (clean.status, clean.version) == (pb.SUCCEEDED, 2)
    assert json.loads(retried.output_json) == json.loads(clean.output_json)
    stats = admin.stats()
    assert stats.calls["RunThread"] == 3
    assert stats.runs_started == 1


def test_unavailable_bursts_on_reads_are_absorbed(make_client: ClientFactory, admin: Platform) -> None:
    client = make_client()
    admin.set_faults(error_next=2, error_status="UNAVAILABLE")
    assert client.get_script("echo").active_version == 2
    assert admin.calls("GetScript") == 3


@pytest.mark.parametrize("method", ["GetScript", "RunThread", "RollbackVersion"])
def test_retries_give_up_with_a_clear_message(
        make_client: ClientFactory, admin: Platform, method: str) -> None:
    client = make_client()
    admin.set_faults(error_next=10, error_status="UNAVAILABLE", methods=[method])
    with pytest.raises(ScriptumError) as info:
        if method == "GetScript":
            client.get_script("echo")
        elif method == "RunThread":
            client.run_thread("echo", 2, {})
        else:
            client.rollback_version("echo", 1, expected_active_version=2, reason="r")
    assert (info.value.code, info.value.method) == ("UNAVAILABLE", method)
    assert "gave up after 3 attempts" in str(info.value)
    stats = admin.stats()
    assert stats.calls[method] == 3
    assert stats.runs_started == 0 and stats.rollbacks_applied == 0


@pytest.mark.parametrize("code", ["NOT_FOUND", "FAILED_PRECONDITION", "INTERNAL"])
def test_other_platform_errors_are_not_retried(
        make_client: ClientFactory, admin: Platform, code: str) -> None:
    client = make_client()
    admin.set_faults(error_next=3, error_status=code, methods=["GetVersion"])
    with pytest.raises(ScriptumError) as info:
        client.get_version("echo", 1)
    assert info.value.code == code and "gave up" not in str(info.value)
    assert admin.calls("GetVersion") == 1


def test_a_stalled_read_is_retried_after_its_deadline(make_client: ClientFactory, admin: Platform) -> None:
    client = make_client(call_timeout_s=0.3)
    admin.set_faults(stall=True, methods=["GetScript"])
    with pytest.raises(ScriptumError) as info:
        client.get_script("echo")
    assert info.value.code == "DEADLINE_EXCEEDED"
    assert "gave up after 3 attempts" in str(info.value)
    assert admin.calls("GetScript") == 3


def test_a_stalled_run_is_not_retried(make_client: ClientFactory, admin: Platform) -> None:
    client = make_client(run_deadline_margin_s=0.3)
    admin.set_faults(stall=True, methods=["RunThread"])
    with pytest.raises(ScriptumError) as info:
        client.run_thread("echo", 2, {}, timeout_s=0.2)
    assert (info.value.code, info.value.method) == ("DEADLINE_EXCEEDED", "RunThread")
    assert "gave up" not in str(info.value)
    assert admin.calls("RunThread") == 1


def test_a_stalled_write_is_not_retried(make_client: ClientFactory, admin: Platform) -> None:
    client = make_client(call_timeout_s=0.3)
    admin.set_faults(stall=True, methods=["ActivateVersion"])
    with pytest.raises(ScriptumError) as info:
        client.activate_version("echo", 2, expected_active_version=2)
    assert info.value.code == "DEADLINE_EXCEEDED"
    assert admin.calls("ActivateVersion") == 1


@pytest.mark.parametrize("method", ["GetScript", "RunThread"])
def test_resource_exhausted_waits_the_servers_hint(make_client: ClientFactory, admin: Platform,
                                                   method: str) -> None:
    sleeps: list[float] = []
    client = make_client(sleep=sleeps.append)
    admin.set_faults(error_next=1, error_status="RESOURCE_EXHAUSTED", methods=[method])
    if method == "GetScript":
        assert client.get_script("echo").name == "echo"
    else:
        assert client.run_thread("echo", 2, {}).status == pb.SUCCEEDED
        assert admin.stats().runs_started == 1
    assert sleeps == [1.0]  # the embedded server's hint: retry-after-ms 1000 / Retry-After: 1
    assert admin.calls(method) == 2


def test_resource_exhausted_gives_up_with_the_hint_attached(
        make_client: ClientFactory, admin: Platform) -> None:
    sleeps: list[float] = []
    client = make_client(sleep=sleeps.append)
    admin.set_faults(error_next=5, error_status="RESOURCE_EXHAUSTED", methods=["ListScripts"])
    with pytest.raises(ScriptumError) as info:
        client.list_scripts()
    assert info.value.code == "RESOURCE_EXHAUSTED" and info.value.retry_after_s == 1.0
    assert "gave up after 3 attempts" in str(info.value)
    assert sleeps == [1.0, 1.0]
