"""Exit codes (DESIGN section 2), decided in one place (``_exit_codes``): the verdict, the rollback's
status, pytest's own code, an interruption and tests outside the gate."""

from __future__ import annotations

from typing import get_args

import pytest

from pytest_scriptum._exit_codes import ROLLBACK_EXIT_CODES, session_exit_code
from pytest_scriptum.rollback import RollbackResult, RollbackStatus, Verification

HUMAN_MUST_ACT: set[RollbackStatus] = {
    "no_target",
    "rolled_back_unverified",
    "rollback_failed",
    "conflict",
    "interrupted",
}
LEFT_ON_PURPOSE_OR_VERIFIED: set[RollbackStatus] = {
    "disabled",
    "dry_run",
    "vetoed",
    "candidate_not_active",
    "rolled_back_verified",
}


def _code(
    decision: str, rollback: RollbackStatus | None = None, pytest_status: int = 1, **flags: bool
) -> int:
    code = RollbackResult(mode="auto", status=rollback, message="", sent=True).exit_code if rollback else None
    return session_exit_code(
        decision=decision,
        rollback_code=code,
        pytest_status=pytest_status,
        interrupted=flags.get("interrupted", False),
        other_tests_failed=flags.get("other_tests_failed", False),
    )


def test_every_rollback_status_has_a_code() -> None:
    assert set(ROLLBACK_EXIT_CODES) == {
        *HUMAN_MUST_ACT,
        *LEFT_ON_PURPOSE_OR_VERIFIED,
        "not_needed",
        "already_rolled_back",
    }
    assert set(ROLLBACK_EXIT_CODES) == set(get_args(RollbackStatus))


@pytest.mark.parametrize("status", sorted(HUMAN_MUST_ACT))
def test_a_failed_gate_a_human_must_finish_is_21(status: RollbackStatus) -> None:
    assert _code("fail", status) == 21
    assert RollbackResult(mode="auto", status=status, message="", sent=True).exit_code == 21


@pytest.mark.parametrize("status", sorted(LEFT_ON_PURPOSE_OR_VERIFIED))
def test_a_failed_gate_that_ended_somewhere_verified_or_chosen_is_1(status: RollbackStatus) -> None:
    assert _code("fail", status) == 1
    assert RollbackResult(mode="auto", status=status, message="").exit_code == 1


def test_the_verdict_alone() -> None:
    assert _code("pass", "not_needed", pytest_status=0) == 0
    assert _code("inconclusive", None) == 20
    assert _code("fail", None) == 1  # a verification re-run decides no rollback of its own


def test_a_passed_gate_still_fails_a_session_whose_other_tests_failed() -> None:
    assert _code("pass", "not_needed", pytest_status=1, other_tests_failed=True) == 1
    assert _code("pass", "not_needed", pytest_status=1, other_tests_failed=False) == 0


def test_an_interrupted_session_keeps_pytests_code() -> None:
    assert _code("inconclusive", None, pytest_status=2, interrupted=True) == 2


def test_codes_are_plain_ints() -> None:
    # str() of an IntEnum is its name on Python 3.10: evidence and the summary print these.
    assert type(_code("inconclusive")) is int
    assert type(RollbackResult(mode="auto", status="conflict", message="").exit_code) is int


def _verification(verdict: str) -> Verification:
    return Verification(version=1, verdict=verdict, reason="")


def test_already_rolled_back_ends_as_a_verified_or_unverified_rollback() -> None:
    # DESIGN section 3: two gates on one failing candidate; the one that did not roll back reports
    # already_rolled_back with the exit code of the rollback it verified.
    verified = RollbackResult("auto", "already_rolled_back", "", verification=_verification("pass"))
    unverified = RollbackResult("auto", "already_rolled_back", "", verification=_verification("fail"))
    assert (verified.exit_code, unverified.exit_code) == (1, 21)


def test_interrupted_before_any_platform_change_keeps_pytests_own_code() -> None:
    assert RollbackResult("auto", "interrupted", "", sent=False).exit_code == 2
    assert RollbackResult("auto", "interrupted", "", sent=True).exit_code == 21


def test_a_rollback_a_human_must_finish_wins_over_an_inconclusive_verdict() -> None:
    # An open journal found in preflight: no smoke test ran, yet a human must act.
    code = session_exit_code(
        decision="inconclusive",
        rollback_code=21,
        pytest_status=1,
        interrupted=False,
        other_tests_failed=False,
    )
    assert code == 21
