"""Exit codes, in one place (DESIGN section 2 "Exit codes"): the plugin's own codes, the code each
rollback status ends a failed gate with, and the one function that decides a session's code.

A leaf (nothing of the package): ``rollback.RollbackResult.exit_code`` reads the rollback table
from the layer below the outcome, and ``outcome`` decides the session's code with
:func:`session_exit_code`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

import pytest

__all__ = ["ROLLBACK_EXIT_CODES", "ExitCode", "session_exit_code"]


class ExitCode(enum.IntEnum):
    """The plugin's exit codes; 2-5 stay pytest's own (interrupted, internal, usage, no tests)."""

    GATE_PASSED = 0
    GATE_FAILED = 1
    """The gate failed; the rollback was verified, not needed, off, a dry run or vetoed."""
    INCONCLUSIVE = 20
    """Errors over budget, too few decided tests, preflight failed, a worker crashed: no rollback."""
    HUMAN_MUST_ACT = 21
    """The rollback failed, had no target, conflicted, was interrupted after the platform changed,
    or the rolled-back version failed its re-run."""


# Rollback status -> the code a failed gate ends with: 1 when the script ended somewhere verified or
# was left as it is on purpose, 21 when a human must act. Two statuses depend on more than their name
# (``rollback.RollbackResult.exit_code``): ``already_rolled_back`` ends as a verified (1) or
# unverified (21) rollback, ``interrupted`` before any platform change keeps pytest's own code (2).
ROLLBACK_EXIT_CODES: Mapping[str, ExitCode] = MappingProxyType({
    "not_needed": ExitCode.GATE_PASSED,
    "disabled": ExitCode.GATE_FAILED,
    "dry_run": ExitCode.GATE_FAILED,
    "vetoed": ExitCode.GATE_FAILED,
    "candidate_not_active": ExitCode.GATE_FAILED,
    "rolled_back_verified": ExitCode.GATE_FAILED,
    "no_target": ExitCode.HUMAN_MUST_ACT,
    "rolled_back_unverified": ExitCode.HUMAN_MUST_ACT,
    "already_rolled_back": ExitCode.HUMAN_MUST_ACT,
    "rollback_failed": ExitCode.HUMAN_MUST_ACT,
    "conflict": ExitCode.HUMAN_MUST_ACT,
    "interrupted": ExitCode.HUMAN_MUST_ACT,
})


def session_exit_code(
    *,
    decision: str,
    rollback_code: int | None,
    pytest_status: int,
    interrupted: bool,
    other_tests_failed: bool,
) -> int:
    """The exit code of a gated session.

    ``decision``: the verdict (pass, fail, inconclusive); ``rollback_code``: the exit code the
    rollback's result ends with (``RollbackResult.exit_code``; None when none was attempted);
    ``pytest_status``: pytest's own code so far; ``interrupted``: a signal stopped the session
    before any platform change, which keeps pytest's code; ``other_tests_failed``: a test that is
    not a smoke test failed, which fails a passed gate's session as pytest would.

    A rollback a human must finish (21) wins over every verdict: an open journal found in preflight
    makes an inconclusive session end with 21 too (DESIGN section 3 "Rollback").
    """
    if interrupted:
        return pytest_status
    if rollback_code == ExitCode.HUMAN_MUST_ACT:
        code: int = ExitCode.HUMAN_MUST_ACT
    elif decision == "inconclusive":
        code = ExitCode.INCONCLUSIVE
    elif decision == "fail":
        code = rollback_code if rollback_code is not None else ExitCode.GATE_FAILED
    elif pytest_status == pytest.ExitCode.TESTS_FAILED and other_tests_failed:
        code = ExitCode.GATE_FAILED
    else:
        code = ExitCode.GATE_PASSED
    return int(code)  # a plain int: str() of an IntEnum is its name on Python 3.10
