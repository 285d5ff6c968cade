"""Safe rollback after a failed gate: exactly once, compare-and-set, read back, then verified.

The runbook's rollback checklist as the plugin performs it:
  1. incident id recorded         (sent with the rollback, kept in the evidence)
  2. roll back to known-good      (compare-and-set: only if the candidate is still active)
  3. smoke re-run on the target   (the whole smoke suite, pinned to the target, recorded apart)
  4. output and steps archived    (evidence of both runs)
A conflict means someone else acted: it is reported, never fought.

The compare-and-set is native when the server's descriptors show the EXTENSION
``RollbackScriptRequest.expected_active_version`` (the server refuses with FAILED_PRECONDITION
unless the candidate is still active); otherwise it is emulated: read GetScript, check that the
candidate is active, then RollbackScript (recorded as ``cas: emulated``; a race in between is
possible, and said so). An ambiguous outcome (DEADLINE_EXCEEDED or UNAVAILABLE on the rollback
call: it may or may not have happened) is resolved by reading back and recognising our own
``rollback_id`` in the activation history, never by guessing; without a history it is a
``rollback_failed`` that a human resolves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pytest_scriptum._exit_codes import ROLLBACK_EXIT_CODES
from pytest_scriptum.client import ScriptumClient, ScriptumError
from pytest_scriptum.client._records import Script

__all__ = [
    "CAS_EXTENSION",
    "CasMode",
    "RollbackPlan",
    "RollbackResult",
    "RollbackStatus",
    "Verification",
    "execute",
]

CAS_EXTENSION = "RollbackScriptRequest.expected_active_version"
CasMode = Literal["native", "emulated"]
# Codes after which a rollback call may or may not have been applied.
_AMBIGUOUS = frozenset({"DEADLINE_EXCEEDED", "UNAVAILABLE"})

RollbackStatus = Literal[
    "not_needed",
    "disabled",
    "dry_run",
    "candidate_not_active",
    "no_target",
    "rolled_back_verified",
    "rolled_back_unverified",
    "rollback_failed",
    "conflict",
]


@dataclass(frozen=True)
class RollbackPlan:
    """What a failed gate is about to do (what ``pytest_scriptum_before_rollback`` sees)."""

    script: str
    mode: Literal["auto", "off", "dry-run"]
    from_version: int
    to_version: int | None
    incident: str | None
    reason: str
    rollback_id: str = ""  # sent with the rollback and recorded in the history (EXTENSION)

    @property
    def manual_command(self) -> str:
        """The runbook's command for an operator."""
        target = self.to_version if self.to_version is not None else "<known-good version>"
        return f"dodil scriptum version rollback {self.script} --to {target}"


@dataclass(frozen=True)
class Verification:
    """The smoke re-run pinned to the rollback target, recorded apart from the candidate run (the
    bundle's ``rollback.verification``): the ``version`` re-run, its gate ``verdict`` and ``reason``,
    its counts and ``tests`` (the child bundle's ``tests[]``), the child's ``exit_code`` and the
    paths of its ``log``, ``junit`` and ``bundle``."""

    version: int
    verdict: str
    """The re-run's gate: "pass", "fail" or "inconclusive" (also when it could not run or report)."""
    reason: str
    tests: tuple[dict[str, Any], ...] = ()
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    exit_code: int | None = None
    """The child pytest's exit code; None when it ran past its deadline and was stopped."""
    log: str | None = None
    junit: str | None = None
    bundle: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The bundle's ``rollback.verification`` object."""
        return {**asdict(self), "tests": list(self.tests)}


@dataclass(frozen=True)
class RollbackResult:
    """How the rollback ended (what ``pytest_scriptum_after_rollback`` sees)."""

    mode: str
    status: RollbackStatus
    message: str
    script: str | None = None
    from_version: int | None = None
    to_version: int | None = None
    incident: str | None = None
    active_after: int | None = None
    verification: Verification | None = None
    manual_command: str | None = None
    cas: CasMode | None = None  # how the compare-and-set was done, when a rollback call was sent
    rollback_id: str | None = None

    @property
    def exit_code(self) -> int:
        """The exit code a failed gate's session ends with after this rollback (``_exit_codes``)."""
        return int(ROLLBACK_EXIT_CODES[self.status])

    def as_dict(self) -> dict[str, Any]:
        """The bundle's ``rollback`` object."""
        return {
            "mode": self.mode,
            "status": self.status,
            "message": self.message,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "incident": self.incident,
            "active_after": self.active_after,
            "manual_command": self.manual_command,
            "cas": self.cas,
            "rollback_id": self.rollback_id,
            "verification": self.verification.as_dict() if self.verification else None,
        }


def _result(plan: RollbackPlan, status: RollbackStatus, message: str, **extra: Any) -> RollbackResult:
    return RollbackResult(
        mode=plan.mode,
        status=status,
        message=message,
        script=plan.script,
        from_version=plan.from_version,
        to_version=plan.to_version,
        incident=plan.incident,
        rollback_id=plan.rollback_id or None,
        **extra,
    )


def _is_our_rollback(info: Script, plan: RollbackPlan) -> bool:
    """After a conflict or an ambiguous answer: did our own rollback (e.g. a retried or timed-out
    call) apply? Recognised by our rollback id in the activation history (without rollback ids
    in the history, by the last entry's from/to/reason/incident). False without a history."""
    if not info.history or info.active_version != plan.to_version:
        return False
    rollbacks = [a for a in info.history if a.kind == "ROLLBACK"]
    if plan.rollback_id and any(a.rollback_id for a in rollbacks):
        return any(
            a.rollback_id == plan.rollback_id and a.version == plan.to_version for a in rollbacks
        )
    last = info.history[-1]
    return (
        last.kind == "ROLLBACK"
        and last.from_version == plan.from_version
        and last.version == plan.to_version
        and last.reason == plan.reason
        and last.incident_id == (plan.incident or "")
    )


def _cas_mode(client: ScriptumClient) -> CasMode:
    try:
        native = client.api_info().has(CAS_EXTENSION)
    except ScriptumError:
        native = False  # unknown: the emulated read-check-write is safe either way
    return "native" if native else "emulated"


def _send(plan: RollbackPlan, client: ScriptumClient, cas: CasMode) -> Script | None:
    """Send the compare-and-set rollback. Returns None when it was applied, or the script as read
    back when the outcome is settled otherwise (someone else changed the active version first).
    Raises ScriptumError for a failure that is neither a conflict nor ambiguous."""
    assert plan.to_version is not None
    if cas == "emulated":
        now = client.get_script(plan.script)  # the "check" of read-check-write, right before the write
        if now.active_version != plan.from_version:
            return now
    try:
        # The client sends the EXTENSION arguments only when the server's descriptors have them.
        client.rollback_script(
            plan.script,
            plan.to_version,
            expected_active_version=plan.from_version,
            reason=plan.reason,
            incident_id=plan.incident or "",
            rollback_id=plan.rollback_id,
        )
    except ScriptumError as exc:
        if not (exc.is_conflict or exc.code in _AMBIGUOUS):
            raise
        try:
            now = client.get_script(plan.script)
        except ScriptumError as read_exc:
            message = f"the rollback answered {exc} and the read-back failed: {read_exc}"
            raise ScriptumError(read_exc.code, message, "GetScript") from None
        if _is_our_rollback(now, plan):
            return None
        if exc.code in _AMBIGUOUS and now.active_version == plan.to_version:
            # It may be ours, but nothing proves it: a human decides, we do not guess.
            raise ScriptumError(
                exc.code,
                f"{exc.message}; the read-back shows v{plan.to_version} active, but no activation history "
                "entry proves it was this session's rollback",
                exc.method,
            ) from None
        if exc.code in _AMBIGUOUS and now.active_version == plan.from_version:
            raise  # not applied: a plain failure
        return now
    return None


def _manual_after_unverified(plan: RollbackPlan, client: ScriptumClient) -> str:
    """The runbook's command after the target failed its smoke re-run: never the candidate, never
    the target that just failed, never a version rolled back from. It walks the activation history
    backwards from the candidate's last publish; when no such version is known it says so and lists
    the history for the human who must choose."""
    base = f"dodil scriptum version rollback {plan.script} --to"
    failed = {plan.from_version, plan.to_version}
    try:
        info: Script | None = client.get_script(plan.script)
    except ScriptumError:
        info = None
    history = list(info.history) if info is not None and info.history is not None else None
    if info is not None and history:
        rolled = set(info.rolled_back_from)
        published = [i for i, entry in enumerate(history) if entry.kind != "ROLLBACK"]
        last = max((i for i in published if history[i].version == plan.from_version), default=len(history))
        for entry in reversed(history[:last]):
            if entry.version > 0 and entry.version not in failed and entry.version not in rolled:
                return f"{base} {entry.version}"
    listed = (
        ", ".join(f"v{entry.version} ({entry.kind.lower()})" for entry in history)
        if history
        else "the platform offers none"
    )
    return (
        f"{base} <known-good version>  (no safe version is known: v{plan.from_version} failed its gate "
        f"and v{plan.to_version} failed its smoke re-run; activation history, oldest first: {listed})"
    )


def execute(
    plan: RollbackPlan,
    client: ScriptumClient,
    *,
    verify: Callable[[int], Verification],
    allowed: Callable[[RollbackPlan], str | None],
) -> RollbackResult:
    """Carry out the plan. ``allowed`` returns a veto reason or None; ``verify`` re-runs the suite."""
    if plan.mode == "off":
        return _result(
            plan, "disabled", "rollback is off (--scriptum-rollback=off); the candidate stays as it is"
        )
    try:
        info = client.get_script(plan.script)
    except ScriptumError as exc:
        return _result(
            plan,
            "rollback_failed",
            f"could not read the active version: {exc}",
            manual_command=plan.manual_command,
        )
    if info.active_version != plan.from_version:
        return _result(
            plan,
            "candidate_not_active",
            f"v{plan.from_version} is not the active version (active: v{info.active_version}): "
            "nothing to roll back; the gate blocks its promotion",
            active_after=info.active_version,
        )
    if plan.to_version is None:
        return _result(
            plan,
            "no_target",
            "no known-good version to roll back to: a human must choose one",
            active_after=info.active_version,
            manual_command=plan.manual_command,
        )
    if plan.mode == "dry-run":
        return _result(
            plan,
            "dry_run",
            f"dry run: would roll back {plan.script} from v{plan.from_version} to v{plan.to_version} "
            f"(compare-and-set on active v{plan.from_version}) and re-run the smoke suite on "
            f"v{plan.to_version}; nothing was changed",
            active_after=info.active_version,
        )
    veto = allowed(plan)
    if veto is not None:
        return _result(plan, "disabled", f"rollback vetoed: {veto}", active_after=info.active_version)
    cas = _cas_mode(client)
    try:
        conflict = _send(plan, client, cas)
    except ScriptumError as exc:
        return _result(
            plan,
            "rollback_failed",
            f"rollback call failed: {exc}",
            manual_command=plan.manual_command,
            cas=cas,
        )
    if conflict is not None:
        return _result(
            plan,
            "conflict",
            f"someone else changed the active version first (expected v{plan.from_version} active, "
            f"found v{conflict.active_version}); active is now v{conflict.active_version}; not fighting it",
            active_after=conflict.active_version,
            cas=cas,
        )
    try:
        after = client.get_script(plan.script).active_version
    except ScriptumError as exc:
        return _result(
            plan,
            "rollback_failed",
            f"rollback sent but the read-back failed: {exc}",
            manual_command=plan.manual_command,
            cas=cas,
        )
    if after != plan.to_version:
        return _result(
            plan,
            "rollback_failed",
            f"read-back shows active v{after}, expected v{plan.to_version}",
            active_after=after,
            manual_command=plan.manual_command,
            cas=cas,
        )
    verification = verify(plan.to_version)
    if verification.verdict == "pass":
        return _result(
            plan,
            "rolled_back_verified",
            f"rolled back {plan.script} v{plan.from_version} -> v{plan.to_version}; the smoke re-run on "
            f"v{plan.to_version} passed ({verification.reason})",
            active_after=after,
            verification=verification,
            cas=cas,
        )
    return _result(
        plan,
        "rolled_back_unverified",
        f"rolled back {plan.script} v{plan.from_version} -> v{plan.to_version}, but the smoke re-run on "
        f"v{plan.to_version} did not pass ({verification.verdict}: {verification.reason}): a human must "
        "choose a known-good version",
        active_after=after,
        verification=verification,
        manual_command=_manual_after_unverified(plan, client),
        cas=cas,
    )
