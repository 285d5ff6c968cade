"""The rollback's compare-and-set and its read-back (DESIGN section 3 "Rollback"), given the answers
of a platform through a fake client: native CAS when the server offers
``RollbackScriptRequest.expected_active_version``, emulated read-check-write otherwise, and an
ambiguous answer resolved by finding our own rollback id in the history, never by guessing.
The same flows against the real dev server are in tests/rollback/test_gate_rollback.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from kit.fake_platform import ALL_EXTENSIONS, FakePlatform

from pytest_scriptum.client import ScriptumError
from pytest_scriptum.client._records import ApiInfo, RollbackResult
from pytest_scriptum.rollback import RollbackPlan, Verification, execute

ROLLBACK_ID = "pytest-scriptum-0123456789abcdef"
PLAN = RollbackPlan(
    script="calc",
    mode="auto",
    from_version=4,
    to_version=3,
    incident="INC-7",
    reason="gate failed",
    rollback_id=ROLLBACK_ID,
)


def verified(version: int) -> Verification:
    return Verification(version=version, verdict="pass", reason="passed 4 of 4", passed=4)


def run(platform: FakePlatform, allowed: Any = None) -> Any:
    return execute(PLAN, platform.client, verify=verified, allowed=allowed or (lambda plan: None))


def without_cas(platform: FakePlatform) -> FakePlatform:
    platform.api = ApiInfo("reflection", ALL_EXTENSIONS - {"RollbackScriptRequest.expected_active_version"})
    return platform


def test_native_cas_sends_the_guard_and_the_extensions() -> None:
    platform = FakePlatform()
    result = run(platform)
    assert (result.status, result.cas, result.rollback_id, result.active_after) == (
        "rolled_back_verified",
        "native",
        ROLLBACK_ID,
        3,
    )
    [(args, kwargs)] = platform.called("rollback_script")
    assert args == ("calc", 3)
    assert kwargs == {
        "expected_active_version": 4,
        "reason": "gate failed",
        "incident_id": "INC-7",
        "rollback_id": ROLLBACK_ID,
    }
    assert result.as_dict()["cas"] == "native"


def test_emulated_cas_reads_checks_then_writes() -> None:
    platform = without_cas(FakePlatform())
    result = run(platform)
    assert (result.status, result.cas) == ("rolled_back_verified", "emulated")
    names = [name for name, _, _ in platform.calls]
    # read (candidate active?), the hook, read again right before the write, write, read back
    assert names == ["get_script", "api_info", "get_script", "rollback_script", "get_script"]


def test_emulated_cas_sees_another_actor_between_its_reads_and_does_not_write() -> None:
    platform = without_cas(FakePlatform())

    def operator_acts(plan: RollbackPlan) -> None:  # the before_rollback hook runs between the reads
        platform.active = 5

    result = run(platform, allowed=operator_acts)
    assert (result.status, result.cas, result.active_after) == ("conflict", "emulated", 5)
    assert "someone else changed the active version during this session" in result.message
    assert "now v5" in result.message
    assert not platform.called("rollback_script")
    assert result.exit_code == 21


def test_native_conflict_that_is_not_ours_is_a_conflict() -> None:
    platform = FakePlatform()

    def someone_else_first(name: str, to_version: int, **extensions: Any) -> RollbackResult:
        platform.apply_rollback(2, rollback_id="another-session")
        raise ScriptumError("FAILED_PRECONDITION", "active version is 2", "RollbackScript")

    platform.answers["rollback_script"] = someone_else_first
    result = run(platform)
    assert (result.status, result.active_after) == ("conflict", 2)


@pytest.mark.parametrize("code", ["DEADLINE_EXCEEDED", "UNAVAILABLE"])
def test_ambiguous_answer_resolved_by_our_rollback_id_in_the_history(code: str) -> None:
    platform = FakePlatform()

    def applied_but_answer_lost(name: str, to_version: int, **extensions: Any) -> RollbackResult:
        platform.apply_rollback(to_version, **extensions)
        raise ScriptumError(code, "the answer did not arrive", "RollbackScript")

    platform.answers["rollback_script"] = applied_but_answer_lost
    result = run(platform)
    assert (result.status, result.active_after) == ("rolled_back_verified", 3)


def test_conflict_on_a_retried_call_that_was_ours_is_recognised() -> None:
    # The first attempt applied, its answer was lost, the retry met the CAS guard.
    platform = FakePlatform()

    def retried(name: str, to_version: int, **extensions: Any) -> RollbackResult:
        platform.apply_rollback(to_version, **extensions)
        raise ScriptumError("FAILED_PRECONDITION", "active version is 3", "RollbackScript")

    platform.answers["rollback_script"] = retried
    assert run(platform).status == "rolled_back_verified"


def test_ambiguous_answer_without_history_is_not_guessed() -> None:
    platform = FakePlatform(activations=None)

    def applied_but_answer_lost(name: str, to_version: int, **extensions: Any) -> RollbackResult:
        platform.apply_rollback(to_version, **extensions)
        raise ScriptumError("DEADLINE_EXCEEDED", "deadline exceeded", "RollbackScript")

    platform.answers["rollback_script"] = applied_but_answer_lost
    result = run(platform)
    assert result.status == "rollback_failed"
    assert "no activation history entry proves it was this session's rollback" in result.message
    assert result.manual_command == "dodil scriptum version rollback calc --to 3"
    assert result.exit_code == 21


def test_ambiguous_answer_that_changed_nothing_is_a_failed_rollback() -> None:
    platform = FakePlatform()
    platform.answers["rollback_script"] = ScriptumError("UNAVAILABLE", "connection reset", "RollbackScript")
    result = run(platform)
    assert result.status == "rollback_failed"
    assert result.message.startswith("rollback call failed: RollbackScript: UNAVAILABLE: connection reset")
    assert platform.active == 4


def test_read_back_showing_another_version_is_a_failed_rollback() -> None:
    platform = FakePlatform()

    def lands_elsewhere(name: str, to_version: int, **extensions: Any) -> RollbackResult:
        return platform.apply_rollback(2, **extensions)

    platform.answers["rollback_script"] = lands_elsewhere
    result = run(platform)
    assert (result.status, result.active_after) == ("rollback_failed", 2)
    assert result.message == "read-back shows active v2, expected v3"
