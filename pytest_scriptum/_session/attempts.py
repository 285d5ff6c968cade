"""Repeated smoke cases (DESIGN section 8 "Repeats"): N independent runs of one case, and the one
way a test's checks are judged against a given ``ThreadResult``.

``scriptum(repeat=N, min_pass=K)`` / ``--scriptum-repeat=N``: every attempt is its own thread
(a fresh request id per run, so the platform never deduplicates them), all N submitted to the
dispatcher at once so they run concurrently within the in-flight limit. Each attempt's result is
judged by :func:`judge`: the declared expectation (``smoke_expect``) and then the test body with
``smoke_thread`` bound to that attempt's result. The case is decided by ``gate.attempts_outcome``.

What the design leaves open, decided here: an attempt the platform errored decides nothing (it is
neither a pass nor a failure) and is charged to the error budget once per errored attempt; the body
runs once per decided attempt, so only its ``smoke_thread`` argument changes between attempts
(fixtures that themselves depend on ``smoke_thread`` keep the first attempt's value).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pytest

from pytest_scriptum.client import ScriptumError
from pytest_scriptum.runner import (
    Dispatcher,
    PlatformFailure,
    PlatformFault,
    RunRequest,
    ThreadResult,
    UnrequestedCancelError,
)
from pytest_scriptum.spec import Expectation

if TYPE_CHECKING:
    from pytest_scriptum import expect

__all__ = ["AttemptRun", "Judgement", "TestsOwnMistake", "attempt_keys", "collect", "judge"]


@dataclass(frozen=True)
class AttemptRun:
    """One attempt's run: its 1-based ``index``, its ``result`` (None when no settled thread came
    back) and ``platform_error``: why the platform decided nothing (None when it ran)."""

    index: int
    result: ThreadResult | None
    platform_error: str | None = None


@dataclass(frozen=True)
class Judgement:
    """How a test's checks ended against one result: ``outcome`` passed or failed, ``error`` the
    failure text (None on a pass), ``mismatches`` of the declared expectation."""

    outcome: Literal["passed", "failed"]
    error: str | None = None
    mismatches: Sequence[expect.Mismatch] = ()


class TestsOwnMistake(Exception):
    """An expectation the test got wrong (invalid schema, a regex over its time bound): the test's
    error whichever result it is judged against (DESIGN section 3)."""

    __test__ = False


def attempt_keys(nodeid: str, repeat: int, *, fresh: bool = False) -> list[str]:
    """The dispatcher keys of a case's ``repeat`` attempts. ``fresh``: keys no earlier run used
    (a rerun plugin's new attempt runs new threads)."""
    tag = f"#{uuid.uuid4().hex}" if fresh else ""
    return [f"{nodeid}{tag}#attempt-{index}" for index in range(1, repeat + 1)]


def collect(
    dispatcher: Dispatcher,
    keys: Sequence[str],
    request: RunRequest,
    describe_error: Callable[[ScriptumError], str],
) -> list[AttemptRun]:
    """Submit every key's run (idempotent: early-dispatched ones keep running) and wait for all.
    A platform error of one attempt is that attempt's, never the others'."""
    dispatcher.submit_all((key, request) for key in keys)
    runs = []
    for index, key in enumerate(keys, start=1):
        try:
            runs.append(AttemptRun(index, dispatcher.result(key)))
        except (PlatformFailure, UnrequestedCancelError) as exc:
            runs.append(AttemptRun(index, exc.result, str(exc)))
        except ScriptumError as exc:
            runs.append(AttemptRun(index, None, describe_error(exc)))
        except PlatformFault as exc:
            runs.append(AttemptRun(index, None, str(exc)))
    return runs


def judge(
    expectation: Expectation | None,
    result: ThreadResult,
    *,
    declared_schema: Mapping[str, Any] | None,
    body: Callable[[Mapping[str, Any]], object] | None,
    fixture: str = "smoke_thread",
    extra: Mapping[str, Any] | None = None,
) -> Judgement:
    """Judge a test's checks against ``result``: the declared ``expectation`` (None: none), then
    the ``body`` with ``fixture`` bound to ``result`` and the fixture values of ``extra`` (e.g.
    ``smoke_baseline``) replaced too (``body`` None: no body to run). A failed assertion,
    ``pytest.fail`` or any other exception of the body is a failed check; a platform error
    raised in the body (``ScriptumError``, ``PlatformFault``) propagates, as do skips and xfails.
    Raises TestsOwnMistake for an expectation the test got wrong."""
    from pytest_scriptum import expect

    if expectation is not None:
        try:
            mismatches = expect.check(
                expectation,
                status=result.status,
                output=result.output,
                error=result.error,
                declared_schema=declared_schema,
            )
        except expect.ExpectationError as exc:
            raise TestsOwnMistake(str(exc)) from None
        if mismatches:
            text = expect.format_failure(
                mismatches, script=result.script, version=result.version, thread_id=result.thread_id
            )
            return Judgement("failed", text, mismatches)
    if body is None:
        return Judgement("passed")
    try:
        body({**(extra or {}), fixture: result})
    except (ScriptumError, PlatformFault):
        raise
    except (Exception, pytest.fail.Exception) as exc:
        text = f"{type(exc).__name__}: {exc}".strip()
        lines = [line for line in text.splitlines() if line.strip()]
        return Judgement("failed", f"thread {result.thread_id}: {lines[0] if lines else text}"[:500])
    return Judgement("passed")
