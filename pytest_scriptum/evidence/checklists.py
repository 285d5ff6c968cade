"""The runbook's two checklists ("Workflow 4: Env Promotion and Safe Rollback", DESIGN section 1), in
their order, with what the plugin did for each step: the bundle's ``checklists`` and the summary.

Promotion: (1) tenant env imported and validated, (2) script overlay updated and reviewed,
(3) candidate version published, (4) pinned smoke run succeeds, (5) rollback command and target
version verified before the change window. Rollback: (1) incident id recorded, (2) version rollback
to known good, (3) smoke thread on the rolled-back version, (4) output and step details archived.

Each step's ``status``: ``ok``, ``failed``, ``not_run`` (it could not be reached: an earlier step
failed, the session stopped) or ``not_needed`` (nothing to do, e.g. no rollback after a pass). Pure:
built from a ``SessionOutcome`` only; keys and versions, never env values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pytest_scriptum.outcome import SessionOutcome
    from pytest_scriptum.preflight import PreflightItem

__all__ = ["PROMOTION", "ROLLBACK", "checklist_lines", "checklists"]

StepStatus = Literal["ok", "failed", "not_run", "not_needed"]

# The runbook's wording, verbatim.
PROMOTION = (
    "Tenant env imported and validated.",
    "Script overlay updated and reviewed.",
    "Candidate version published.",
    "Pinned smoke run succeeds.",
    "Rollback command and target version verified before change window.",
)
ROLLBACK = (
    "Record incident/ticket ID in runbook.",
    "Run version rollback to known good version.",
    "Execute smoke thread on rolled-back version.",
    "Archive output and step details for postmortem.",
)
_ROLLED_BACK = frozenset({"rolled_back_verified", "rolled_back_unverified", "already_rolled_back"})


def _step(number: int, name: str, status: StepStatus, detail: str) -> dict[str, Any]:
    return {"step": number, "name": name, "status": status, "detail": detail}


def _from_items(items: Sequence[PreflightItem], prefixes: Sequence[str]) -> tuple[StepStatus, str]:
    """The step as the preflight items starting with ``prefixes`` say it (all ok, or the first
    failure); ``not_run`` when preflight never reached them."""
    found = [item for item in items if item.name.startswith(tuple(prefixes))]
    if not found:
        return "not_run", "preflight did not reach this step"
    failed = [item for item in found if not item.ok]
    if failed:
        return "failed", "; ".join(f"{item.name}: {item.detail}" for item in failed)
    return "ok", "; ".join(f"{item.name}: {item.detail}" for item in found)


def _promotion(outcome: SessionOutcome) -> list[dict[str, Any]]:
    items = outcome.preflight.items if outcome.preflight is not None else ()
    publish = outcome.publish
    steps = []
    status, detail = _from_items(items, ("1. tenant env",))
    steps.append(_step(1, PROMOTION[0], status, detail))
    status, detail = _from_items(items, ("2. script overlay",))
    steps.append(_step(2, PROMOTION[1], status, detail))
    status, detail = _from_items(items, ("3. ",))
    if publish is not None and publish["mode"] != "draft":
        if publish["status"] in ("published", "published_ungated"):
            status, detail = "ok", f"{detail}; {publish['message']}"
        elif publish["status"] == "publish_failed":
            status, detail = "failed", publish["message"]
        elif status == "ok":
            status, detail = "not_run", f"{detail}; {publish['message']}"
    elif publish is not None:
        detail = f"{detail}; the draft is the candidate (TestScriptDraft), never published"
    steps.append(_step(3, PROMOTION[2], status, detail))
    verdict = outcome.verdict
    counts = verdict.counts
    gate: StepStatus = "ok" if verdict.decision == "pass" else "failed"
    if outcome.preflight is None or not outcome.preflight.ok:
        gate = "not_run"  # no smoke test ran
    steps.append(_step(
        4, PROMOTION[3], gate,
        f"{verdict.decision}: {verdict.reason} ({counts.passed} passed, {counts.failed} failed, "
        f"{counts.errors} errors)",
    ))
    status, detail = _from_items(items, ("5. rollback target",))
    steps.append(_step(5, PROMOTION[4], status, detail))
    return steps


def _rollback(outcome: SessionOutcome) -> list[dict[str, Any]]:
    rollback = outcome.rollback
    sent = rollback is not None and (rollback.sent or rollback.status in _ROLLED_BACK)
    steps = []
    if not sent:
        why = (
            f"no rollback ({rollback.status}: {rollback.message})"
            if rollback is not None
            else f"no rollback attempted (gate {outcome.verdict.decision})"
        )
        steps.append(_step(1, ROLLBACK[0], "not_needed", why))
        steps.append(_step(2, ROLLBACK[1], "not_needed", why))
        steps.append(_step(3, ROLLBACK[2], "not_needed", why))
    else:
        assert rollback is not None
        incident = rollback.incident or outcome.incident
        steps.append(_step(
            1, ROLLBACK[0], "ok" if incident else "failed",
            f"incident {incident} recorded with the rollback" if incident
            else "no incident id was given (--scriptum-incident / SCRIPTUM_INCIDENT)",
        ))
        steps.append(_step(
            2, ROLLBACK[1], "ok" if rollback.status in _ROLLED_BACK else "failed",
            f"{rollback.status}: {rollback.message}",
        ))
        verification = rollback.verification
        if verification is None:
            steps.append(_step(3, ROLLBACK[2], "not_run", "no smoke re-run on the rolled-back version"))
        else:
            ok: StepStatus = "ok" if verification.verdict == "pass" else "failed"
            steps.append(_step(
                3, ROLLBACK[2], ok,
                f"v{verification.version} re-run: {verification.verdict} ({verification.passed} passed, "
                f"{verification.failed} failed, {verification.errors} errors)",
            ))
    archived = ", ".join(f"{name} {path}" for name, path in outcome.evidence.items())
    steps.append(_step(
        4, ROLLBACK[3], "ok" if outcome.evidence else "not_run",
        f"thread ids, outputs and steps in: {archived}" if archived else "no evidence file configured",
    ))
    return steps


def checklists(outcome: SessionOutcome) -> dict[str, list[dict[str, Any]]]:
    """The bundle's ``checklists``: ``promotion`` (5 steps) and ``rollback`` (4 steps), in order."""
    return {"promotion": _promotion(outcome), "rollback": _rollback(outcome)}


def checklist_lines(outcome: SessionOutcome) -> list[str]:
    """One summary line per step, in the runbook's order: ``promotion 3. <name> ok``."""
    lines = []
    for name, steps in checklists(outcome).items():
        for step in steps:
            lines.append(f"{name} checklist {step['step']}. {step['name']} {step['status']}")
    return lines
