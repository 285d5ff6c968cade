"""Hooks pytest-scriptum calls, so teams add notifications without forking.

Implement them in a ``conftest.py`` or a plugin, like any pytest hook::

    def pytest_scriptum_gate_evaluated(verdict):
        post_to_chat(f"gate {verdict.decision}: {verdict.reason}")

    def pytest_scriptum_before_rollback(plan):
        return not change_freeze_active()   # False vetoes the rollback

    def pytest_scriptum_after_rollback(result):
        page_oncall_if(result.status != "rolled_back_verified")

They run once per session, on the process that owns the gate: the xdist controller, or the
single pytest process. They do not run on the verification re-run after a rollback.

A hook that raises (a chat webhook that is down) is recorded as a hook error in the bundle's
``hook_errors`` and in the summary; it never prevents the rollback, never suppresses the evidence
and never changes the exit code, and each implementation is called on its own, so one that raises
does not keep the others from running (DESIGN section 2 "Plugin hooks").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_scriptum.gate import Verdict
    from pytest_scriptum.rollback import RollbackPlan, RollbackResult

__all__ = [
    "pytest_scriptum_after_rollback",
    "pytest_scriptum_before_rollback",
    "pytest_scriptum_gate_evaluated",
]

hookspec = pytest.hookspec


@hookspec
def pytest_scriptum_gate_evaluated(verdict: Verdict) -> None:
    """Called once the promotion gate has a verdict (pass, fail or inconclusive)."""


@hookspec
def pytest_scriptum_before_rollback(plan: RollbackPlan) -> bool | None:
    """Called before the compare-and-set rollback is sent.

    Return False to veto it: the rollback status becomes ``vetoed`` (exit 1) and the reason names
    the veto. None or True lets it proceed; so does an exception (recorded, never a veto).
    """


@hookspec
def pytest_scriptum_after_rollback(result: RollbackResult) -> None:
    """Called after the rollback attempt (and its verification run), whatever its status."""
