"""Safe rollback after a failed gate: exactly once, compare-and-set, read back, then verified.

The runbook's rollback checklist as the plugin performs it:
  1. incident id recorded         (sent with the rollback, kept in the evidence)
  2. roll back to known-good      (compare-and-set: only if the candidate is still active)
  3. smoke re-run on the target   (the whole smoke suite, pinned to the target, recorded apart)
  4. output and steps archived    (evidence of both runs)
A conflict means someone else acted: it is reported, never fought (DESIGN section 3 "Rollback":
``conflict`` when the active version changed since preflight, ``already_rolled_back`` when it is
this plan's own rollback done by another gate, then verified).

The compare-and-set is native when the server's descriptors show the EXTENSION
``RollbackScriptRequest.expected_active_version`` (the server refuses with FAILED_PRECONDITION
unless the candidate is still active); otherwise it is emulated: read GetScript, check that the
candidate is active, then RollbackScript (recorded as ``cas: emulated``; a race in between is
possible, and said so). An ambiguous outcome (DEADLINE_EXCEEDED or UNAVAILABLE on the rollback
call: it may or may not have happened) is resolved by reading back and recognising our own
``rollback_id`` in the activation history, never by guessing (native: the same request is sent
once more when the read-back comes too early); without a history it is a ``rollback_failed`` that a
human resolves.

Interruptions (SIGINT/SIGTERM, ``_session.signals``) are checked right before the call (nothing is
sent) and after it (the verification is skipped or was stopped; the state is read back), and the
session's journal entry is written right before the call (``before_change``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

import pytest

from pytest_scriptum._exit_codes import ROLLBACK_EXIT_CODES, ExitCode
from pytest_scriptum.client import ScriptumClient, ScriptumError

if TYPE_CHECKING:
    from pytest_scriptum.client._records import Script

__all__ = [
    "CAS_EXTENSION",
    "CasMode",
    "RollbackPlan",
    "RollbackResult",
    "RollbackStatus",
    "Verification",
    "execute",
    "safe_command",
]

CAS_EXTENSION = "RollbackScriptRequest.expected_active_version"
CasMode = Literal["native", "emulated"]
# Codes after which a rollback call may or may not have been applied.
_AMBIGUOUS = frozenset({"DEADLINE_EXCEEDED", "UNAVAILABLE"})

RollbackStatus = Literal[
    "not_needed",
    "disabled",
    "dry_run",
    "vetoed",
    "candidate_not_active",
    "no_target",
    "rolled_back_verified",
    "rolled_back_unverified",
    "already_rolled_back",
    "rollback_failed",
    "conflict",
    "interrupted",
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
    known_failing: tuple[str, ...] = ()
    """Node ids not re-run: the paired baseline (``--scriptum-baseline=paired``) saw them fail on
    this very version in this session, so their failure here was already measured and says
    nothing about the rollback (DESIGN section 8: an environmental failure never pages anyone)."""

    def as_dict(self) -> dict[str, Any]:
        """The bundle's ``rollback.verification`` object."""
        return {**asdict(self), "tests": list(self.tests), "known_failing": list(self.known_failing)}


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
    sent: bool = False
    """A rollback call left this process (the platform may have changed), or an earlier session's did."""

    @property
    def exit_code(self) -> int:
        """The exit code a failed gate's session ends with after this rollback (DESIGN section 2
        "Exit codes", the table in ``_exit_codes``): ``already_rolled_back`` ends as a verified (1)
        or unverified (21) rollback; ``interrupted`` before any platform change keeps pytest's own
        "interrupted" (2), after it a human must act (21)."""
        if self.status == "already_rolled_back":
            verified = self.verification is not None and self.verification.verdict == "pass"
            return int(ExitCode.GATE_FAILED if verified else ExitCode.HUMAN_MUST_ACT)
        if self.status == "interrupted" and not self.sent:
            return int(pytest.ExitCode.INTERRUPTED)
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


def _rolled_back_by_another(info: Script, plan: RollbackPlan) -> bool:
    """The platform is on this session's own target through a rollback away from this candidate
    (another gate failed the same candidate first): DESIGN section 3, ``already_rolled_back``."""
    if info.active_version != plan.to_version or not info.history:
        return False
    last = info.history[-1]
    return (
        last.kind == "ROLLBACK" and last.from_version == plan.from_version and last.version == plan.to_version
    )


def _who_and_when(info: Script) -> str:
    """What the platform says about the last activation (kind, from, when, incident), if it says."""
    if not info.history:
        return "the platform keeps no activation history to say who or when"
    last = info.history[-1]
    when = "an unknown time"
    if last.at_ms:
        stamp = datetime.fromtimestamp(last.at_ms / 1000, timezone.utc).isoformat(timespec="seconds")
        when = stamp.replace("+00:00", "Z")
    how = f"a {last.kind.lower()}" + (f" from v{last.from_version}" if last.from_version else "")
    said = (("incident", last.incident_id), ("reason", last.reason))
    extra = "".join(f", {name} {value!r}" for name, value in said if value)
    return f"v{last.version} became active by {how} at {when}{extra}"


def _cas_mode(client: ScriptumClient) -> CasMode:
    try:
        native = client.api_info().has(CAS_EXTENSION)
    except ScriptumError:
        native = False  # unknown: the emulated read-check-write is safe either way
    return "native" if native else "emulated"


def _call(plan: RollbackPlan, client: ScriptumClient) -> None:
    assert plan.to_version is not None
    # The client sends the EXTENSION arguments only when the server's descriptors have them.
    client.rollback_script(
        plan.script,
        plan.to_version,
        expected_active_version=plan.from_version,
        reason=plan.reason,
        incident_id=plan.incident or "",
        rollback_id=plan.rollback_id,
    )


def _send(plan: RollbackPlan, client: ScriptumClient, cas: CasMode) -> Script | None:
    """Send the compare-and-set rollback. Returns None when it was applied, or the script as read
    back when the outcome is settled otherwise (someone else changed the active version first).
    Raises ScriptumError for a failure that is neither a conflict nor resolved.

    An ambiguous answer (deadline, reset) is resolved by reading back: our rollback id in the
    history means it applied. When the read-back still shows the candidate active, the call may
    yet be applied late; with the native compare-and-set the same request (same rollback id) is
    sent once more: the platform answers a rollback id it already applied from its history, and
    whichever of the two copies comes second finds the candidate no longer active and is refused,
    so it applies exactly once. Emulated, nothing makes a second call safe: a human decides."""
    if cas == "emulated":
        now = client.get_script(plan.script)  # the "check" of read-check-write, right before the write
        if now.active_version != plan.from_version:
            return now
    resent = False
    while True:
        try:
            _call(plan, client)
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
            if exc.code in _AMBIGUOUS and now.active_version == plan.from_version:
                if cas == "native" and plan.rollback_id and not resent:
                    resent = True
                    continue
                late = "" if cas == "native" else "; it may still apply late (emulated compare-and-set)"
                message = f"{exc.message}; the read-back shows v{plan.from_version} still active{late}"
                raise ScriptumError(exc.code, message, exc.method) from None
            if exc.code in _AMBIGUOUS and now.active_version == plan.to_version:
                # It may be ours, but nothing proves it: a human decides, we do not guess.
                raise ScriptumError(
                    exc.code,
                    f"{exc.message}; the read-back shows v{plan.to_version} active, but no activation "
                    "history entry proves it was this session's rollback",
                    exc.method,
                ) from None
            return now
        return None


def safe_command(plan: RollbackPlan, client: ScriptumClient | None, *, target_failed: bool = False) -> str:
    """The runbook's command for the human who must act: ``dodil scriptum version rollback NAME
    --to N`` with an N that is never the candidate, never a version rolled back from, and never the
    target when it just failed its smoke re-run (``target_failed``). The plan's target (checked in
    preflight) when it is safe; else walked back through the activation history from the
    candidate's last publish; when no such version is known it says so and lists the history
    (DESIGN section 3 "Rollback")."""
    base = f"dodil scriptum version rollback {plan.script} --to"
    failed = {plan.from_version} | ({plan.to_version} if target_failed else set())
    if plan.to_version is not None and plan.to_version not in failed:
        return f"{base} {plan.to_version}"
    try:
        info: Script | None = client.get_script(plan.script) if client is not None else None
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
    why = f"v{plan.from_version} failed its gate" + (
        f" and v{plan.to_version} failed its smoke re-run" if target_failed else ""
    )
    return (
        f"{base} <known-good version>  (no safe version is known: {why}; activation history, oldest "
        f"first: {listed})"
    )


def _never(_plan: RollbackPlan) -> None:
    return None


def _not_interrupted() -> str | None:
    return None


def execute(
    plan: RollbackPlan,
    client: ScriptumClient,
    *,
    verify: Callable[[int], Verification],
    allowed: Callable[[RollbackPlan], str | None],
    active_at_preflight: int | None = None,
    before_change: Callable[[RollbackPlan], None] = _never,
    interrupted: Callable[[], str | None] = _not_interrupted,
) -> RollbackResult:
    """Carry out the plan (DESIGN section 3 "Rollback").

    ``allowed`` returns a veto reason or None; ``verify`` re-runs the suite on the target;
    ``active_at_preflight`` is the active version preflight saw (a change since then is someone
    else's: ``conflict``, or ``already_rolled_back`` when it is this plan's own rollback done by
    another gate); ``before_change`` records the intent (the journal) right before the rollback
    call and raises OSError when it cannot; ``interrupted`` names a signal the session received
    (SIGINT/SIGTERM), or None: before the call nothing is sent, after it the verification is
    skipped and the state read back is reported as ``interrupted``."""
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
            manual_command=safe_command(plan, None),
        )
    if info.active_version != plan.from_version:
        return _not_on_candidate(plan, client, info, active_at_preflight, verify, interrupted, cas=None)
    if plan.to_version is None:
        return _result(
            plan,
            "no_target",
            "no known-good version to roll back to: a human must choose one",
            active_after=info.active_version,
            manual_command=safe_command(plan, client),
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
        return _result(plan, "vetoed", f"rollback vetoed: {veto}", active_after=info.active_version)
    signal_name = interrupted()
    if signal_name is not None:
        return _result(
            plan,
            "interrupted",
            f"{signal_name} before the rollback was sent: nothing was changed "
            f"(active: v{info.active_version})",
            active_after=info.active_version,
        )
    try:
        before_change(plan)
    except OSError as exc:
        return _result(
            plan,
            "rollback_failed",
            f"the rollback journal could not be written, so no rollback was sent: {exc}",
            active_after=info.active_version,
            manual_command=safe_command(plan, client),
        )
    cas = _cas_mode(client)
    try:
        conflict = _send(plan, client, cas)
    except ScriptumError as exc:
        return _result(
            plan,
            "rollback_failed",
            f"rollback call failed: {exc}",
            manual_command=safe_command(plan, client),
            cas=cas,
            sent=True,
        )
    if conflict is not None:
        return _not_on_candidate(plan, client, conflict, plan.from_version, verify, interrupted, cas=cas)
    try:
        after = client.get_script(plan.script).active_version
    except ScriptumError as exc:
        return _result(
            plan,
            "rollback_failed",
            f"rollback sent but the read-back failed: {exc}",
            manual_command=safe_command(plan, client),
            cas=cas,
            sent=True,
        )
    if after != plan.to_version:
        return _result(
            plan,
            "rollback_failed",
            f"read-back shows active v{after}, expected v{plan.to_version}",
            active_after=after,
            manual_command=safe_command(plan, client),
            cas=cas,
            sent=True,
        )
    done = f"rolled back {plan.script} v{plan.from_version} -> v{plan.to_version}"
    return _verified(plan, client, done, verify, interrupted, status=None, cas=cas)


def _not_on_candidate(
    plan: RollbackPlan,
    client: ScriptumClient,
    info: Script,
    active_at_preflight: int | None,
    verify: Callable[[int], Verification],
    interrupted: Callable[[], str | None],
    *,
    cas: CasMode | None,
) -> RollbackResult:
    """The candidate is not active (found before the call, or by the compare-and-set)."""
    now = info.active_version
    if active_at_preflight != plan.from_version:
        return _result(
            plan,
            "candidate_not_active",
            f"v{plan.from_version} is not the active version (active: v{now}): "
            "nothing to roll back; the gate blocks its promotion",
            active_after=now,
        )
    if plan.to_version is not None and _rolled_back_by_another(info, plan):
        done = (
            f"another actor already rolled {plan.script} back from v{plan.from_version} to "
            f"v{plan.to_version} ({_who_and_when(info)})"
        )
        return _verified(plan, client, done, verify, interrupted, status="already_rolled_back", cas=cas)
    return _result(
        plan,
        "conflict",
        f"someone else changed the active version during this session (v{plan.from_version} was active "
        f"at preflight; now v{now}: {_who_and_when(info)}); v{now} was not gated here; not fighting it",
        active_after=now,
        cas=cas,
        sent=cas is not None,
        manual_command=safe_command(plan, client),
    )


def _verified(
    plan: RollbackPlan,
    client: ScriptumClient,
    done: str,
    verify: Callable[[int], Verification],
    interrupted: Callable[[], str | None],
    *,
    status: RollbackStatus | None,
    cas: CasMode | None,
) -> RollbackResult:
    """The target is active: run the verification (unless interrupted) and report it."""
    assert plan.to_version is not None
    target = plan.to_version
    sent = status is None  # this session's own rollback call, or another actor's rollback
    verification = None if interrupted() else verify(target)
    signal_name = interrupted()
    if signal_name is not None:
        after: int | None = None
        try:
            after = client.get_script(plan.script).active_version
            state = f"read back: v{after} is active"
        except ScriptumError as exc:
            state = f"the read-back failed: {exc}"
        return _result(
            plan,
            "interrupted",
            f"{done}; then {signal_name} stopped the session before the smoke re-run on v{target} "
            f"finished ({state}): v{target} is unverified",
            active_after=after,
            verification=verification,
            manual_command=safe_command(plan, client),
            cas=cas,
            sent=True,
        )
    assert verification is not None
    if verification.verdict == "pass":
        return _result(
            plan,
            status or "rolled_back_verified",
            f"{done}; the smoke re-run on v{target} passed ({verification.reason})",
            active_after=target,
            verification=verification,
            cas=cas,
            sent=sent,
        )
    return _result(
        plan,
        status or "rolled_back_unverified",
        f"{done}, but the smoke re-run on v{target} did not pass ({verification.verdict}: "
        f"{verification.reason}): a human must choose a known-good version",
        active_after=target,
        verification=verification,
        manual_command=safe_command(plan, client, target_failed=True),
        cas=cas,
        sent=sent,
    )
