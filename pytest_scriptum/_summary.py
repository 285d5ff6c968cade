"""The short section that ends the terminal summary: verdict, candidate, target, rollback, evidence."""

from __future__ import annotations

from pytest_scriptum.gate import Verdict
from pytest_scriptum.preflight import Preflight
from pytest_scriptum.rollback import RollbackResult

__all__ = ["summary_lines"]


def summary_lines(
    *,
    verdict: Verdict,
    script: str | None,
    candidate: int | None,
    endpoint: str | None,
    preflight: Preflight | None,
    rollback: RollbackResult | None,
    exit_code: int | None,
    evidence: dict[str, str],
    verification_of: int | None,
) -> list[str]:
    """Plain lines; the terminal reporter adds the section rule and colour."""
    lines = [f"verdict: {verdict.decision.upper()} - {verdict.reason}"]
    role = f" (verification re-run after rolling back from v{verification_of})" if verification_of else ""
    lines.append(f"candidate: {script} v{candidate} at endpoint {endpoint}{role}")
    if preflight is not None:
        if preflight.failure:
            lines.append(f"preflight: FAILED {preflight.failure}")
        if preflight.target is not None:
            lines.append(f"rollback target: v{preflight.target} ({preflight.target_source})")
        elif verification_of is None:
            lines.append("rollback target: none known")
    if rollback is not None:
        lines.append(f"rollback: {rollback.status} - {rollback.message}")
        if rollback.incident:
            lines.append(f"incident: {rollback.incident}")
        if rollback.verification is not None and rollback.verification.log:
            lines.append(f"verification log: {rollback.verification.log}")
        if rollback.manual_command:
            lines.append(f"ACTION REQUIRED, run by hand: {rollback.manual_command}")
    if exit_code is not None:
        lines.append(f"exit code: {exit_code}")
    for name, path in evidence.items():
        lines.append(f"evidence {name}: {path}")
    return lines
