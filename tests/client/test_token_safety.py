"""The bearer token never appears in the client's errors, tracebacks with locals, logs or reprs.

Tracebacks are rendered as pytest renders them under ``--tb=long --showlocals``, so a local
variable holding the token in any client frame would show here.
"""

from __future__ import annotations

import logging

import pytest
from _pytest._code import ExceptionInfo
from kit import TOKEN
from kit import Platform as Admin
from kit.scripted import ClientFactory

from pytest_scriptum.client import ScriptumError

WRONG = "sk-live-0f9e8d7c6b5a-not-for-this-platform"


def _rendered(info: pytest.ExceptionInfo[ScriptumError]) -> str:
    return str(
        ExceptionInfo.from_exc_info((info.type, info.value, info.tb)).getrepr(
            showlocals=True, style="long", chain=True
        )
    )


def test_failing_and_retried_calls_never_show_the_token(
    make_client: ClientFactory, admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client()
    admin.set_faults(error_next=2, error_status="UNAVAILABLE", methods=["CreateThread"])
    run = client.run_thread("echo", 2, {"x": 1})
    with pytest.raises(ScriptumError) as not_found:
        client.get_script("zz-no-such-script")
    admin.set_faults(error_next=5, error_status="UNAVAILABLE", methods=["GetThreadResult"])
    with pytest.raises(ScriptumError) as gave_up:
        client.get_thread_result(run.thread.thread_id)
    texts = [
        caplog.text,
        _rendered(not_found),
        _rendered(gave_up),
        repr(client),
        repr(run),
        repr(client.api_info()),
        repr(client.settings),
    ]
    assert "on attempt 1 of 3, retrying" in caplog.text  # the retries really were logged
    assert "timeout_s" in texts[1]  # the client's frames and their locals were rendered
    assert "GetScript: NOT_FOUND" in texts[1] and "gave up after 3 attempts" in texts[2]
    for text in texts:
        assert TOKEN not in text


def test_a_refused_token_is_not_shown_either(
    make_client: ClientFactory, admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(token=WRONG)
    with pytest.raises(ScriptumError) as info:
        client.run_thread("echo", 2, {})
    assert info.value.code == "UNAUTHENTICATED"
    for text in (caplog.text, _rendered(info), repr(client), str(info.value)):
        assert WRONG not in text


def test_a_stream_error_never_shows_the_token(make_client: ClientFactory, admin: Admin) -> None:
    client = make_client()
    admin.set_faults(error_next=5, error_status="UNAVAILABLE", methods=["WatchThread"])
    thread_id = client.create_thread("echo", 2, {"sleep_s": 0.1})
    with pytest.raises(ScriptumError) as info:
        client.watch_thread(thread_id, timeout_s=30)
    assert info.value.method == "WatchThread"
    assert TOKEN not in _rendered(info)
