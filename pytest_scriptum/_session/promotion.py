"""Publishing the draft (``--scriptum-publish``, DESIGN section 8 "The runbook in one command").

The runbook's promotion step 3, "publish the candidate draft", done by the plugin: the version
active just before is recorded in the journal (``_session.journal``, kind ``publish``) *before*
``PublishScriptDraft`` is sent, so a session killed right after the publish leaves a record the next
session for the script finds and reports (exit 21 with the exact rollback command). The version the
platform returns is the candidate every later run is pinned to; the rollback target is exactly the
version that was active before (``preflight.run_preflight(publish=True)``).

An ambiguous answer to the publish call (a deadline, a reset) is resolved by reading the script
back: a new active version above the previous latest one is the version this session published
(the docs document no idempotency key for PublishScriptDraft: a second session publishing the
same script at the same moment could be mistaken for ours — the window is the call's duration).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pytest_scriptum._session.journal import JournalEntry, journal_path
from pytest_scriptum.client import ScriptumClient, ScriptumError
from pytest_scriptum.outcome import utc_now

if TYPE_CHECKING:
    from pytest_scriptum.client._records import Script

__all__ = ["PublishMode", "PublishRecord", "PublishStatus", "manual_rollback", "publish_draft"]

PublishMode = Literal["draft", "publish", "draft+publish"]
"""``draft``: the draft is tested, never published; ``publish``: published after preflight and
gated; ``draft+publish``: the draft gated first, published only on pass, then gated again."""

PublishStatus = Literal["not_requested", "not_published", "published", "published_ungated", "publish_failed"]
"""``not_requested``: ``--scriptum-version=draft`` alone; ``not_published``: the draft's gate did
not pass (or preflight failed), nothing was published; ``published``: published and gated (the
gate's verdict and the rollback say how that ended); ``published_ungated``: published and active
but never gated to a verdict (interrupted, inconclusive): a human must act (exit 21);
``publish_failed``: the platform refused the publish, nothing changed."""


def manual_rollback(script: str, previous: int | None) -> str:
    """The runbook's command that undoes this session's publish (DESIGN section 3: never the version
    that was just published)."""
    if previous is None:
        return f"dodil scriptum version rollback {script} --to <known-good version>  (none was active before)"
    return f"dodil scriptum version rollback {script} --to {previous}"


@dataclass(frozen=True)
class PublishRecord:
    """The bundle's ``publish`` object: the ``mode``, the compiled draft's ``draft_sha``, the
    ``version`` the session published (None when it published nothing), ``previous_active`` (the
    version active before: the rollback target), the ``status`` and a one-sentence ``message``
    (with the exact next command when a human must act)."""

    mode: PublishMode
    draft_sha: str | None
    status: PublishStatus
    version: int | None = None
    previous_active: int | None = None
    message: str = ""
    second_pass: Mapping[str, Any] | None = None
    """``draft+publish``: the published version's pinned second pass (``rollback.Verification``
    as a dict: verdict, reason, counts, its bundle, log and JUnit paths)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "draft_sha": self.draft_sha,
            "version": self.version,
            "previous_active": self.previous_active,
            "status": self.status,
            "message": self.message,
            "second_pass": dict(self.second_pass) if self.second_pass is not None else None,
        }

    def ungated(self, script: str, why: str) -> PublishRecord:
        """This published version is active and was never gated to a verdict (exit 21)."""
        return replace(
            self,
            status="published_ungated",
            message=(
                f"{script} v{self.version} was published by this session and is ACTIVE, UNGATED ({why}); "
                f"roll it back: {manual_rollback(script, self.previous_active)}"
            ),
        )


def publish_draft(
    client: ScriptumClient,
    *,
    script: str,
    mode: PublishMode,
    draft_sha: str | None,
    previous_active: int | None,
    incident: str | None,
    evidence_dir: Path,
) -> tuple[PublishRecord, JournalEntry]:
    """Journal the intent (OSError when it cannot be written: nothing is sent), publish the draft,
    and return the record and the (open) journal entry; the caller closes the entry when the
    session ends. A refused publish is ``publish_failed`` (nothing changed, read back)."""
    publish_id = f"pytest-scriptum-publish-{uuid.uuid4().hex}"
    before = client.get_script(script)
    entry = JournalEntry(
        script=script,
        from_version=previous_active or 0,
        to_version=0,  # not known until the platform answers
        rollback_id=publish_id,
        incident=incident,
        opened_at=utc_now(),
        pid=os.getpid(),
        path=str(journal_path(evidence_dir, script, publish_id)),
        kind="publish",
    )
    entry.write()
    record = PublishRecord(mode, draft_sha, "published", previous_active=previous_active)
    try:
        result = client.publish_script_draft(script)
        version = result.version.version
    except ScriptumError as exc:
        after = _read_back(client, script)
        unchanged = after is None or after.active_version == before.active_version
        if unchanged or after is None or after.latest_version <= before.latest_version:
            failed = replace(
                record, status="publish_failed", message=f"PublishScriptDraft failed, nothing changed: {exc}"
            )
            return failed, entry
        version = after.active_version  # the call's answer was lost; the platform shows our publish
    entry = replace(entry, to_version=version)
    entry.write()
    message = f"published the draft of {script} as v{version} (v{previous_active or 'none'} was active)"
    return replace(record, version=version, message=message), entry


def _read_back(client: ScriptumClient, script: str) -> Script | None:
    try:
        return client.get_script(script)
    except ScriptumError:
        return None
