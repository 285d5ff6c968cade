"""The short section that ends the terminal summary: verdict, candidate, target, rollback, evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_scriptum.evidence.bundle import baseline_tally
from pytest_scriptum.evidence.checklists import checklist_lines

if TYPE_CHECKING:
    from pytest_scriptum.evidence.redaction import Redactor
    from pytest_scriptum.outcome import SessionOutcome

__all__ = ["summary_lines"]


def summary_lines(outcome: SessionOutcome, redactor: Redactor | None = None) -> list[str]:
    """Plain lines, masked by ``redactor``; the terminal reporter adds the section rule and colour
    (the first line is the verdict)."""
    verdict, preflight, rollback = outcome.verdict, outcome.preflight, outcome.rollback
    verification_of = outcome.verification_of
    lines = [f"verdict: {verdict.decision.upper()} - {verdict.reason}"]
    role = f" (verification re-run after rolling back from v{verification_of})" if verification_of else ""
    candidate = f"{outcome.script} {outcome.candidate_label}"
    lines.append(f"candidate: {candidate} at endpoint {outcome.endpoint}{role}")
    if outcome.selection is not None and outcome.selection.partial:
        lines.append(f"selection: {outcome.selection.describe()}")
    if preflight is not None:
        if preflight.failure:
            lines.append(f"preflight: FAILED {preflight.failure}")
        if preflight.target is not None:
            lines.append(f"rollback target: v{preflight.target} ({preflight.target_source})")
        elif verification_of is None:
            lines.append("rollback target: none known")
    if outcome.publish is not None:
        publish = outcome.publish
        lines.append(f"publish: {publish['status']} - {publish['message']}")
        if publish["status"] == "published_ungated":
            lines.append(f"ACTION REQUIRED: {publish['message']}")
    if outcome.env_changes is not None:
        env = outcome.env_changes
        imported = ", ".join(env["imported"]) or "nothing"
        overlay_set = ", ".join(env["overlay_set"]) or "nothing"
        deleted = ", ".join(env["overlay_deleted"]) or "nothing"
        lines.append(f"env: imported {imported}; overlay set {overlay_set}, deleted {deleted}")
        lines.append(f"env overlay: {env['restore']} - {env['message']}")
    if rollback is not None:
        lines.append(f"rollback: {rollback.status} - {rollback.message}")
        if rollback.incident:
            lines.append(f"incident: {rollback.incident}")
        if rollback.verification is not None and rollback.verification.log:
            lines.append(f"verification log: {rollback.verification.log}")
        if rollback.manual_command:
            lines.append(f"ACTION REQUIRED, run by hand: {rollback.manual_command}")
    tally = baseline_tally(outcome.tests)
    if tally is not None:
        before = tally["pre_existing"]
        lines.append(
            f"paired baseline: {tally['text']} (environmental, not counted as regressions); "
            f"{tally['regressions']} regressions, {tally['baseline_errors']} baseline errors, "
            f"{tally['cases']} cases paired"
            + (f"; {before} pre-existing (the baseline failed them in the previous bundle)" if before else "")
        )
    lines.extend(_advisory_lines(outcome))
    lines.extend(_repeat_lines(outcome))
    for error in outcome.hook_errors:
        lines.append(f"hook error: {error.hook} in {error.plugin}: {error.error}")
    if outcome.journal is not None:
        lines.append(f"rollback journal: {outcome.journal['path']} ({outcome.journal['state']})")
    if outcome.role in ("candidate", "merged"):
        lines.extend(checklist_lines(outcome))  # the runbook's two checklists, in order
    lines.append(f"exit code: {outcome.exit_code}")
    for name, path in outcome.evidence.items():
        lines.append(f"evidence {name}: {path}")
    return [redactor.text(line) for line in lines] if redactor is not None else lines


def _advisory_lines(outcome: SessionOutcome) -> list[str]:
    """Advisory tests (DESIGN section 8): not gate evidence, so a failure is said, not counted."""
    advisory = [test for test in outcome.tests if test.advisory]
    lines = []
    for test in advisory:
        if test.outcome in ("failed", "error"):
            what = "would have failed" if test.outcome == "failed" else "would have errored"
            lines.append(f"advisory: {test.nodeid} {what} (not gate evidence): {test.error}")
    if advisory:
        failing = len(lines)
        lines.append(f"advisory tests: {len(advisory)}, {failing} would have failed; not gate evidence")
    return lines


def _repeat_lines(outcome: SessionOutcome) -> list[str]:
    """Repeated cases that did not pass, and how many were repeated (DESIGN section 8 "Repeats")."""
    repeated = [test for test in outcome.tests if test.repeat is not None]
    lines = [
        f"repeat: {test.nodeid} {test.outcome}: {test.repeat.verdict}"
        for test in repeated
        if test.repeat is not None and test.outcome != "passed"
    ]
    if repeated:
        hat = sum(test.repeat.pass_hat_n for test in repeated if test.repeat is not None)
        total = len(repeated)
        lines.append(f"repeated cases: {total}, pass^N (every attempt passed) in {hat} of {total}")
    return lines
