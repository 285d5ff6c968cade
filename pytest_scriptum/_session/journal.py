"""The rollback journal (DESIGN section 3 "Rollback"): the intent of a rollback, written before the
call and closed when its verification ends, so a session that dies in between (kill -9, a host
lost) leaves a record the next session for the script finds.

One file per rollback beside the evidence: ``rollback-journal.<script>.<rollback id>.json`` (script
names are ``[a-z0-9-]``, rollback ids ``pytest-scriptum-<hex>``: safe in a file name), written
atomically and flushed to disk; two sessions sharing an evidence directory never overwrite each
other's entry. Server-side, the platform records the
same rollback id in its activation history (the ``RollbackScriptRequest.rollback_id`` EXTENSION),
so a later session can tell whether the journalled rollback was applied.

States: ``open`` (intent written, the call may or may not have been sent and applied),
``closed`` (the session that wrote it reported its end: ``status`` is its rollback status) and
``reported`` (a later session found it open and reported it; it is not reported twice).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pytest_scriptum.client import ScriptumClient, ScriptumError
from pytest_scriptum.evidence._files import write_atomic
from pytest_scriptum.outcome import utc_now
from pytest_scriptum.rollback import RollbackPlan, RollbackResult

__all__ = [
    "JournalEntry",
    "JournalState",
    "OpenJournal",
    "find_open",
    "journal_path",
    "read_journal",
    "state_of_open",
]

JournalState = Literal["open", "closed", "reported"]


def journal_path(directory: Path, script: str, rollback_id: str) -> Path:
    """The journal file of one rollback of ``script`` in the evidence ``directory``."""
    return directory / f"rollback-journal.{script}.{rollback_id}.json"


def find_open(directory: Path, script: str, exclude: Collection[str] = ()) -> JournalEntry | None:
    """The most recent open journal entry of ``script`` in ``directory``, or None; ``exclude``: the
    paths of this session's own entries (an overlay changed before preflight, DESIGN section 8)."""
    paths = sorted(directory.glob(f"rollback-journal.{script}.*.json"))
    found = [read_journal(path) for path in paths if str(path) not in exclude]
    open_entries = [entry for entry in found if entry is not None and entry.state == "open"]
    return max(open_entries, key=lambda entry: entry.opened_at, default=None)


@dataclass(frozen=True)
class JournalEntry:
    """One rollback's intent and how it ended (the file's content and the bundle's ``journal``)."""

    script: str
    from_version: int
    to_version: int
    rollback_id: str
    incident: str | None
    opened_at: str
    pid: int
    state: JournalState = "open"
    status: str | None = None
    closed_at: str | None = None
    path: str = ""
    kind: Literal["rollback", "publish", "overlay"] = "rollback"
    """``publish`` (``_session.promotion``, DESIGN section 8): ``from_version`` is the version active
    before the publish (the rollback target), ``to_version`` the published one (0 until known).
    ``overlay`` (``_session.env_promotion``): the script overlay was changed; see ``overlay``."""
    overlay: dict[str, Any] | None = None
    """Kind ``overlay``: ``before`` (keys -> keyed fingerprints of the snapshot, never values),
    ``set`` and ``delete`` (the keys this session changed)."""

    @classmethod
    def intent(cls, plan: RollbackPlan, path: Path) -> JournalEntry:
        assert plan.to_version is not None
        return cls(
            script=plan.script,
            from_version=plan.from_version,
            to_version=plan.to_version,
            rollback_id=plan.rollback_id,
            incident=plan.incident,
            opened_at=utc_now(),
            pid=os.getpid(),
            path=str(path),
        )

    def write(self) -> None:
        """Write the entry (OSError when it cannot: then no rollback is sent)."""
        data = {k: v for k, v in asdict(self).items() if k != "path"}
        path = Path(self.path)
        write_atomic(path, json.dumps(data, indent=2) + "\n")
        # The intent must survive a kill -9 and a power loss right after: flush the directory too.
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def closed(self, state: JournalState, status: str) -> JournalEntry:
        return replace(self, state=state, status=status, closed_at=utc_now())

    def as_dict(self) -> dict[str, Any]:
        """The bundle's ``journal`` object."""
        return asdict(self)


def read_journal(path: Path) -> JournalEntry | None:
    """The entry at ``path``; None when there is none. A file that cannot be read as an entry is
    an open entry of unknown content (a human looks), never silently ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        entry = JournalEntry(**{**data, "path": str(path)})
    except (ValueError, TypeError) as exc:
        return JournalEntry("", 0, 0, "", None, "", 0, "open", f"unreadable: {exc}", None, str(path))
    return entry


@dataclass(frozen=True)
class OpenJournal:
    """What a later session found: the open ``entry``, and the platform's state now."""

    entry: JournalEntry
    summary: str
    active: int | None
    applied: bool | None
    """Our rollback id is in the activation history (None: the platform could not say)."""

    def result(self, mode: Literal["auto", "off", "dry-run"]) -> RollbackResult:
        """This session's rollback result: ``interrupted`` (the earlier session's rollback), exit 21."""
        e = self.entry
        if e.kind == "overlay":
            keys = sorted({*(e.overlay or {}).get("set", ()), *(e.overlay or {}).get("delete", ())})
            command = (
                f"restore the overlay keys {', '.join(keys) or '(unknown)'} of {e.script} from your "
                f"configuration source (their earlier values were never stored), then remove {e.path}"
            )
        elif e.kind == "publish":
            command = (
                f"dodil scriptum version rollback {e.script} --to {e.from_version}"
                if self.applied and e.from_version
                else f"nothing to roll back; remove {e.path} once checked"
            )
        elif self.applied:
            command = (
                f"pytest --scriptum-version={e.to_version} --scriptum-rollback=off  "
                f"(verify v{e.to_version}, which the earlier session rolled back to; if it fails: "
                f"dodil scriptum version rollback {e.script} --to <known-good version>)"
            )
        elif self.active == e.from_version:
            command = f"dodil scriptum version rollback {e.script} --to {e.to_version}"
        else:
            command = (
                f"dodil scriptum version rollback {e.script} --to <known-good version>  (v{self.active} is "
                "active now: check who activated it)"
            )
        return RollbackResult(
            mode=mode,
            status="interrupted",
            message=self.summary,
            script=e.script or None,
            from_version=e.from_version or None,
            to_version=e.to_version or None,
            incident=e.incident,
            active_after=self.active,
            manual_command=command,
            rollback_id=e.rollback_id or None,
            sent=True,
        )


def state_of_open(entry: JournalEntry, client: ScriptumClient) -> OpenJournal:
    """Read the platform's state for an open ``entry`` and say it in one sentence."""
    if entry.kind == "publish":
        return _state_of_publish(entry, client)
    if entry.kind == "overlay":
        return _state_of_overlay(entry)
    head = (
        f"an earlier session (pid {entry.pid}, {entry.opened_at}) journalled a rollback of {entry.script} "
        f"v{entry.from_version} -> v{entry.to_version} (rollback id {entry.rollback_id}) and never closed it "
        f"({entry.path})"
    )
    if not entry.script:
        return OpenJournal(entry, f"{head}: the journal is unreadable ({entry.status})", None, None)
    try:
        info = client.get_script(entry.script)
    except ScriptumError as exc:
        return OpenJournal(entry, f"{head}; the platform's state could not be read: {exc}", None, None)
    applied: bool | None = None
    if info.history is not None:
        applied = any(a.rollback_id == entry.rollback_id for a in info.history if a.rollback_id)
    if applied:
        state = (
            f"the platform applied it and v{info.active_version} is active; v{entry.to_version} was never "
            "verified"
        )
    elif applied is None:
        state = f"the platform keeps no history to say whether it applied; v{info.active_version} is active"
    else:
        state = f"the platform never applied it; v{info.active_version} is active"
    return OpenJournal(entry, f"{head}: {state}", info.active_version, applied)


def _state_of_publish(entry: JournalEntry, client: ScriptumClient) -> OpenJournal:
    """An earlier session journalled publishing the draft and never closed it (killed between the
    publish and the end of its gate): the version it published may be active and ungated."""
    head = (
        f"an earlier session (pid {entry.pid}, {entry.opened_at}) journalled publishing the draft of "
        f"{entry.script} while v{entry.from_version or 'none'} was active and never closed it ({entry.path})"
    )
    try:
        info = client.get_script(entry.script)
    except ScriptumError as exc:
        return OpenJournal(entry, f"{head}; the platform's state could not be read: {exc}", None, None)
    published = info.active_version != entry.from_version
    state = (
        f"v{info.active_version} is active and was never gated"
        if published
        else f"v{info.active_version} is still active: the publish was not applied"
    )
    return OpenJournal(entry, f"{head}: {state}", info.active_version, published)


def _state_of_overlay(entry: JournalEntry) -> OpenJournal:
    """An earlier session changed the script overlay and never closed its journal (killed between
    applying and restoring it): the values before its change were held in its memory only."""
    overlay = entry.overlay or {}
    changed = ", ".join(overlay.get("set", ())) or "nothing"
    deleted = ", ".join(overlay.get("delete", ())) or "nothing"
    what = f"set {changed}, deleted {deleted}"
    summary = (
        f"an earlier session (pid {entry.pid}, {entry.opened_at}) changed the overlay of {entry.script} "
        f"({what}) and never closed its journal ({entry.path}): the overlay may still hold that change, "
        "and its earlier values were never stored (only keyed fingerprints, in the journal)"
    )
    return OpenJournal(entry, summary, None, None)
