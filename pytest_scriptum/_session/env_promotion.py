"""Env promotion (DESIGN section 8, the runbook's promotion checklist steps 1 and 2): import the tenant
env (``--scriptum-env-file``), snapshot and change the script overlay (``--scriptum-overlay``), and
on a rollback restore the overlay to its snapshot with compare-and-set.

Where the snapshot lives: in this object's memory only. The evidence and the journal hold keys and
keyed fingerprints (HMAC-SHA256, ``preflight.fingerprint``), never a value. So a session killed
(kill -9) between applying the overlay and restoring it leaves the overlay changed and the values
before it nowhere: its journal entry (kind ``overlay``, written before ``UpdateScriptEnv``) stays
open, and the next session for the script reports it before anything else (exit 21), naming the
keys set and deleted and saying to restore them from the team's configuration source.

Compare-and-set: the platform documents no compare-and-set for ``UpdateScriptEnv`` (facts sheet,
section 2.4), so restoring is read-compare-write: ``GetScriptEnv``; unless the overlay is exactly
what this session left, nothing is written (``conflict``); else one ``UpdateScriptEnv`` puts the
snapshot back. The race window is between that read and that write (two round trips): a change by
another actor inside it is overwritten for the keys the restore writes.

What is kept, never reverted (README "Choices"):
- the tenant env imported from the env file: it is shared by every script of the tenant, and a
  rotated secret's old value may already be revoked, so putting it back could break every script;
- overlay keys that are secrets (by name, or declared with ``--scriptum-secret-env``) that this
  session set or deleted: a rotated secret stays rotated, like the tenant's.
Every other overlay key this session set or deleted is restored to its snapshot value (or deleted
again when the snapshot did not have it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pytest_scriptum._session.env_inputs import OverlayChange, TenantEnv
from pytest_scriptum._session.journal import JournalEntry, journal_path
from pytest_scriptum.client import ScriptumClient
from pytest_scriptum.evidence.redaction import is_secret_key
from pytest_scriptum.outcome import utc_now
from pytest_scriptum.preflight import fingerprint

__all__ = ["EnvChanges", "EnvPromotion", "RestoreStatus"]

RestoreStatus = Literal["not_needed", "restored", "conflict", "restore_failed", "kept"]
"""``not_needed``: no overlay change or no rollback; ``restored``: put back to the snapshot;
``conflict``: another actor changed the overlay since this session did, nothing written;
``restore_failed``: the platform refused the read or the write; ``kept``: the gate did not roll back,
the change stays (on purpose)."""


@dataclass(frozen=True)
class EnvChanges:
    """The bundle's ``env_changes``: ``imported`` (tenant keys -> fingerprints), ``overlay_set``
    (keys -> fingerprints of the values set), ``overlay_deleted`` (keys), ``restored`` and ``kept``
    (keys), the overlay's ``restore`` status and a one-sentence ``message``."""

    imported: Mapping[str, str] = field(default_factory=dict)
    overlay_set: Mapping[str, str] = field(default_factory=dict)
    overlay_deleted: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    restore: RestoreStatus = "not_needed"
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": dict(sorted(self.imported.items())),
            "overlay_set": dict(sorted(self.overlay_set.items())),
            "overlay_deleted": list(self.overlay_deleted),
            "restored": list(self.restored),
            "kept": list(self.kept),
            "restore": self.restore,
            "message": self.message,
        }


class EnvPromotion:
    """One session's env changes on ``script``; ``key`` keys the fingerprints. Never shows values
    (its repr holds none)."""

    def __init__(
        self, client: ScriptumClient, script: str, key: bytes, *, declared_secret: Iterable[str] = ()
    ) -> None:
        self._client = client
        self._script = script
        self._key = key
        self._declared = tuple(declared_secret)
        self._snapshot: dict[str, str] | None = None  # the overlay before this session's change
        self._left: dict[str, str] | None = None  # the overlay this session left
        self.changes = EnvChanges()
        self.journal: JournalEntry | None = None

    def __repr__(self) -> str:
        return f"EnvPromotion({self._script!r})"

    def _fp(self, values: Mapping[str, str]) -> dict[str, str]:
        return {k: fingerprint(v, self._key) for k, v in values.items()}

    def import_tenant(self, env: TenantEnv) -> None:
        """``ImportEnvVars`` (the platform overwrites existing keys, as the CLI's ``env import``)."""
        self._client.import_env_vars(env.values)
        self.changes = replace(self.changes, imported=self._fp(env.values))

    def apply_overlay(self, change: OverlayChange, evidence_dir: Path) -> None:
        """Snapshot (``GetScriptEnv``), journal the intent (OSError: nothing applied), apply
        (``UpdateScriptEnv``) and remember what this session left."""
        snapshot = dict(self._client.get_script_env(self._script).env)
        overlay_id = f"pytest-scriptum-overlay-{uuid.uuid4().hex}"
        entry = JournalEntry(
            script=self._script,
            from_version=0,
            to_version=0,
            rollback_id=overlay_id,
            incident=None,
            opened_at=utc_now(),
            pid=os.getpid(),
            path=str(journal_path(evidence_dir, self._script, overlay_id)),
            kind="overlay",
            overlay={
                "before": self._fp(snapshot),
                "set": sorted(change.set),
                "delete": list(change.delete),
            },
        )
        entry.write()
        self.journal = entry
        self._snapshot = snapshot
        after = self._client.update_script_env(self._script, set=change.set, delete=change.delete)
        self._left = dict(after.env)
        self.changes = replace(
            self.changes, overlay_set=self._fp(change.set), overlay_deleted=tuple(change.delete)
        )

    @property
    def overlay_changed(self) -> bool:
        """Whether this session changed the overlay (and so may have to restore it)."""
        return self._snapshot is not None

    def keep(self, why: str) -> None:
        """The gate did not roll back: the overlay change stays (``kept``)."""
        if self.overlay_changed:
            self.changes = replace(self.changes, restore="kept", message=why)
        self._close("kept")

    def restore(self) -> EnvChanges:
        """Put the overlay back to its snapshot by read-compare-write (module docstring), keeping
        the tenant env and the secret overlay keys; the new ``changes``."""
        snapshot, left = self._snapshot, self._left
        imported = tuple(sorted(self.changes.imported))
        if snapshot is None or left is None:
            self.changes = replace(self.changes, kept=imported, restore="not_needed",
                                   message=_kept_tenant(imported))
            self._close("not_needed")
            return self.changes
        from pytest_scriptum.client import ScriptumError

        try:
            current = dict(self._client.get_script_env(self._script).env)
        except ScriptumError as exc:
            return self._end("restore_failed", imported, f"the overlay could not be read back: {exc}")
        if current != left:
            changed = sorted(k for k in set(current) | set(left) if current.get(k) != left.get(k))
            return self._end(
                "conflict", imported,
                f"the overlay of {self._script} was changed by another actor since this session applied "
                f"it (keys {', '.join(changed)}): nothing was overwritten",
            )
        touched = sorted(set(self.changes.overlay_set) | set(self.changes.overlay_deleted))
        secret = [k for k in touched if is_secret_key(k, self._declared)]
        back = [k for k in touched if k not in secret]
        to_set = {k: snapshot[k] for k in back if k in snapshot}
        to_delete = [k for k in back if k not in snapshot]
        try:
            self._client.update_script_env(self._script, set=to_set, delete=to_delete)
        except ScriptumError as exc:
            return self._end("restore_failed", imported, f"UpdateScriptEnv refused the restore: {exc}")
        kept = tuple(sorted(set(imported) | set(secret)))
        message = f"overlay of {self._script} restored to its snapshot ({', '.join(back) or 'no key'})"
        if kept:
            message += f"; kept: {', '.join(kept)} (rotated secrets and the tenant env are never reverted)"
        self.changes = replace(
            self.changes, restored=tuple(back), kept=kept, restore="restored", message=message
        )
        self._close("restored")
        return self.changes

    def _end(self, status: RestoreStatus, imported: tuple[str, ...], message: str) -> EnvChanges:
        self.changes = replace(self.changes, kept=imported, restore=status, message=message)
        self._close(status)
        return self.changes

    def _close(self, status: str) -> None:
        entry = self.journal
        if entry is None or entry.state != "open":
            return
        closed = entry.closed("closed", status)
        try:
            closed.write()
        except OSError:
            return  # stays open: the next session reports it
        self.journal = closed


def _kept_tenant(imported: tuple[str, ...]) -> str:
    if not imported:
        return "no overlay change to restore"
    return f"no overlay change to restore; kept the imported tenant env ({', '.join(imported)})"

