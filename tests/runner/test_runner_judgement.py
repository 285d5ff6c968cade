"""PinnedRunner: what a settled thread means for the gate, given the client's RunRecord (a fake
client: the record shapes are the client's own; the same paths against the real dev server are in
tests/runner/test_platform_states.py and test_version_drift.py). A thread the candidate produced
(COMPLETED, FAILED for the script's own reason, PAUSED) is returned; drift, a platform-marked
failure and an unrequested cancel raise.
"""

from __future__ import annotations

import gc
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from pytest_scriptum.client import ScriptumClient, ScriptumError
from pytest_scriptum.client._records import RunRecord, Step, Thread, ThreadOutput
from pytest_scriptum.runner import (
    CircuitOpenError,
    Dispatcher,
    PinnedRunner,
    PlatformFailure,
    PlatformFault,
    RunCancelledError,
    RunRequest,
    UnrequestedCancelError,
    VersionDriftError,
)


def record(
    status: str = "COMPLETED",
    *,
    output: bytes = b'{"total": 12480, "ratio": 0.5, "big": 123456789012345678901234567890}',
    version: int = 4,
    script: str = "calc",
    error: str = "",
    error_code: str = "",
) -> RunRecord:
    thread = Thread(
        thread_id="thr_0123456789abcdef",
        status=status,
        script_name=script,
        version=version,
        error=error,
        error_code=error_code,
        created_at_ms=1_000,
        started_at_ms=1_500,
        finished_at_ms=3_750,
        env_keys=("DB_HOST", "MODEL"),
        metadata={"scriptum.request_id": "req-1"},
    )
    steps = (
        Step("1", "extract", "COMPLETED", 1_600, 1_700, 100),
        Step("1.0", "lines", "COMPLETED", 1_610, 1_650, 0),
        Step(
            "2", "validate", "FAILED" if status == "FAILED" else "COMPLETED", 1_700, 1_900, 200, error=error
        ),
    )
    return RunRecord(thread, ThreadOutput(thread.thread_id, status, output, len(output), steps))


@dataclass
class FakeClient:
    answers: list[RunRecord | ScriptumError] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def run_thread(self, name: str, version: int, input: Any, **kwargs: Any) -> RunRecord:
        self.calls.append({"name": name, "version": version, "input": input, **kwargs})
        answer = self.answers.pop(0)
        if isinstance(answer, ScriptumError):
            raise answer
        return answer


def runner(*answers: RunRecord | ScriptumError, error_limit: int = 5) -> tuple[PinnedRunner, FakeClient]:
    fake = FakeClient(list(answers))
    pinned = PinnedRunner(
        cast(ScriptumClient, fake), version=4, script="calc", timeout=30.0, error_limit=error_limit
    )
    return pinned, fake


def test_a_completed_thread_becomes_a_thread_result() -> None:
    pinned, fake = runner(record())
    result = pinned.run({"text": "x"})
    assert fake.calls == [
        {
            "name": "calc",
            "version": 4,
            "input": {"text": "x"},
            "load_env": True,
            "timeout_s": 30.0,
            "cancel": None,
            "draft": False,  # a numbered candidate: CreateThread, never TestScriptDraft
            "on_pushback": None,
            "on_created": None,
            "on_retry": None,
        }
    ]
    assert (result.thread_id, result.script, result.version, result.status) == (
        "thr_0123456789abcdef",
        "calc",
        4,
        "COMPLETED",
    )
    # output_data decoded as JSON, integers exact (never through a float)
    assert result.output == {"total": 12480, "ratio": 0.5, "big": 123456789012345678901234567890}
    assert type(result.output["total"]) is int
    assert [(s.path, s.name, s.status, s.duration_ms) for s in result.steps] == [
        ("1", "extract", "COMPLETED", 100.0),
        ("1.0", "lines", "COMPLETED", 40.0),  # no duration reported: from the step's own times
        ("2", "validate", "COMPLETED", 200.0),
    ]
    assert (result.duration_s, result.finished_at) == (2.25, 3.75)  # the platform's clock
    assert (result.env_keys, result.request_id, result.error_code) == (("DB_HOST", "MODEL"), "req-1", "")


@pytest.mark.parametrize(
    ("status", "code"), [("FAILED", "SCRIPT_ERROR"), ("FAILED", "SCRIPT_DEADLINE"), ("PAUSED", "")]
)
def test_the_scripts_own_outcomes_are_returned_for_the_test_to_judge(status: str, code: str) -> None:
    pinned, _ = runner(record(status, output=b"", error="ValueError: boom", error_code=code))
    result = pinned.run({})
    assert (result.status, result.error_code, result.output) == (status, code, None)


@pytest.mark.parametrize(("version", "script"), [(5, "calc"), (0, "calc"), (4, "other")])
def test_an_answer_for_another_version_or_script_is_drift(version: int, script: str) -> None:
    pinned, _ = runner(record(version=version, script=script))
    with pytest.raises(
        VersionDriftError, match=r"version drift: the run was pinned to calc v4 but the platform"
    ):
        pinned.run({})


@pytest.mark.parametrize(
    "code", ["PLATFORM_CAPACITY", "PLATFORM_RUNTIME_CRASH", "PLATFORM_RESTART", "PLATFORM_DEADLINE"]
)
def test_a_failure_the_platform_marks_as_its_own_raises_with_the_thread(code: str) -> None:
    pinned, _ = runner(record("FAILED", output=b"", error="no worker free", error_code=code))
    with pytest.raises(
        PlatformFailure, match=rf"platform failure {code} in thread thr_0123456789abcdef"
    ) as info:
        pinned.run({})
    assert info.value.result.error_code == code and info.value.result.status == "FAILED"
    assert isinstance(info.value, PlatformFault)


def test_a_cancel_nobody_here_asked_for_is_an_error() -> None:
    pinned, _ = runner(record("CANCELLED", output=b"", error="cancelled", error_code="CANCELLED_BY_CALLER"))
    with pytest.raises(UnrequestedCancelError, match="did not cancel it"):
        pinned.run({})


def test_a_cancel_this_session_asked_for_is_a_cancelled_run() -> None:
    cancel = threading.Event()
    cancel.set()
    pinned, _ = runner(ScriptumError("CANCELLED", "run cancelled by the caller", "WatchThread"))
    with pytest.raises(RunCancelledError):
        pinned.run({}, cancel=cancel)
    pinned, _ = runner(record("CANCELLED", output=b""))  # the platform settled it CANCELLED first
    with pytest.raises(RunCancelledError):
        pinned.run({}, cancel=cancel)


def test_output_that_is_not_json_is_the_platforms_fault() -> None:
    pinned, _ = runner(record(output=b"\xff not json"))
    with pytest.raises(PlatformFault, match="output_data is not UTF-8 JSON"):
        pinned.run({})


def test_platform_errors_open_the_circuit_but_a_refused_input_does_not() -> None:
    refused = ScriptumError("INVALID_ARGUMENT", "input: 'text' is a required property", "CreateThread")
    pinned, _ = runner(*([refused] * 3), error_limit=2)
    for _ in range(3):
        with pytest.raises(ScriptumError):
            pinned.run({})
    assert not pinned.circuit_open

    unavailable = ScriptumError("UNAVAILABLE", "connection refused", "CreateThread")
    pinned, fake = runner(
        unavailable, record("FAILED", output=b"", error_code="PLATFORM_CAPACITY"), error_limit=2
    )
    for expected in (ScriptumError, PlatformFailure):
        with pytest.raises(expected):
            pinned.run({})
    assert pinned.circuit_open
    with pytest.raises(CircuitOpenError):
        pinned.run({})
    assert len(fake.calls) == 2  # the open circuit dispatched nothing


def test_the_dispatcher_forgets_a_run_once_its_test_took_the_result() -> None:
    # Thousands of outputs must not stay in the dispatcher until the session ends (issue 18).
    pinned, fake = runner(record(), record())
    dispatcher = Dispatcher(pinned, "auto")
    try:
        dispatcher.submit("t1", RunRequest({"text": "x"}))
        result = dispatcher.result("t1")
        assert result.status == "COMPLETED" and dispatcher.dispatched("t1")
        dispatcher.submit("t1", RunRequest({"text": "x"}))  # idempotent: not run again
        gone = weakref.ref(result)
        del result
        gc.collect()
        assert gone() is None  # nothing in the dispatcher holds it any more
        with pytest.raises(KeyError):
            dispatcher.result("t1")
        assert len(fake.calls) == 1
    finally:
        dispatcher.close()
