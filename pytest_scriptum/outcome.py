"""SessionOutcome: what one gated session decided, as one frozen record built once when it ends.

The process that owns the gate builds it at ``pytest_sessionfinish``, after the verdict, the
rollback and the exit code; every evidence writer (``pytest_scriptum.evidence``: the JSON
bundle, the JUnit suite properties, the Allure session results, the terminal summary) is a
function of it, so they cannot disagree. Exit codes are decided in ``_exit_codes``.

Data flows one way: options -> client -> runner -> expect -> gate -> rollback -> outcome ->
evidence. This module imports the records below it for their types only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pytest_scriptum.gate import Outcome, Verdict
    from pytest_scriptum.preflight import Preflight
    from pytest_scriptum.rollback import RollbackResult

__all__ = ["HookError", "PinnedRun", "Role", "Selection", "SessionOutcome", "TestRecord", "utc_now"]

Role = Literal["candidate", "verification", "shard", "merged"]
"""A session gates a candidate, or is the verification re-run pinned to the rollback target, or is
one shard of a sharded gate (``--scriptum-rollback=defer``: records, decides nothing), or the
merge of a sharded gate's shards (``scriptum-gate merge``: decides, rolls back once)."""

@dataclass(frozen=True)
class Selection:
    """Which part of the suite a session ran (DESIGN section 3 "Run modes", partial sessions).

    ``partial``: something was deselected (``-k``, ``-m``, ``--lf``, ``--sw``, ``--deselect``) or
    node ids (``file.py::test``) were named; ``selected`` / ``deselected``: test counts (node ids
    deselect nothing pytest can count); ``args``: the session's command-line arguments.
    """

    partial: bool
    selected: int
    deselected: int
    args: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The bundle's ``selection`` object."""
        return {**asdict(self), "args": list(self.args)}

    def describe(self) -> str:
        """One line for the summary, e.g. ``partial: 1 selected, 3 deselected (args: -k one)``."""
        kind = "partial" if self.partial else "full"
        args = f" (args: {' '.join(self.args)})" if self.partial and self.args else ""
        return f"{kind}: {self.selected} selected, {self.deselected} deselected{args}"


def utc_now() -> str:
    """An ISO-8601 UTC timestamp with milliseconds, e.g. ``2026-01-01T00:00:00.000Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class PinnedRun:
    """What the evidence says about a smoke test's pinned run: the ``script`` and ``version`` it was
    pinned to, and of its thread (None when none ran) the ``thread_id``, the platform's ``status``
    and ``error_code``, and the platform's ``duration_s`` (seconds)."""

    script: str | None = None
    version: int | None = None
    thread_id: str | None = None
    status: str | None = None
    error_code: str | None = None
    duration_s: float | None = None

    def merged(self, later: PinnedRun) -> PinnedRun:
        """This run with every field ``later`` knows (a later phase's report knows more)."""
        known = {name: value for name, value in asdict(later).items() if value is not None}
        return replace(self, **known)


@dataclass(frozen=True)
class TestRecord:
    """How one smoke test ended (``outcome``), whether it was ``critical``, its pinned ``run``, and
    ``error``: a short text of its first bad phase (None when it passed or was skipped), and its
    ``attempts``."""

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: Outcome
    critical: bool = False
    run: PinnedRun = field(default_factory=PinnedRun)
    error: str | None = None
    attempts: int = 1
    """how many times its body ran (a rerun plugin's attempts included; any failed one decides)"""

    def as_dict(self) -> dict[str, Any]:
        """The bundle's ``tests[]`` entry (the run's fields inline)."""
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "critical": self.critical,
            **asdict(self.run),
            "error": self.error,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class HookError:
    """A ``pytest_scriptum_*`` hook implementation that raised (DESIGN section 2 "Plugin hooks"): the
    ``hook``, the ``plugin`` that implements it (a conftest path or a plugin name) and the
    ``error`` (exception type and message). Recorded, never blocking the rollback or the evidence."""

    hook: str
    plugin: str
    error: str

    def as_dict(self) -> dict[str, Any]:
        """One entry of the bundle's ``hook_errors``."""
        return asdict(self)


@dataclass(frozen=True)
class SessionOutcome:
    """Everything the evidence of one gated session says.

    ``endpoint`` is what evidence shows (``embedded`` for the local server, never its address);
    ``verification_of`` is set on a verification re-run (the candidate rolled back from);
    ``started_at`` / ``finished_at`` are ``utc_now`` timestamps; ``preflight`` is None when no
    preflight ran; ``rollback`` is None when the gate was inconclusive (nothing was attempted);
    ``evidence`` names every evidence file or directory this session writes (``bundle``,
    ``junit``, ``allure``) with its path; ``hook_errors`` the hooks that raised; ``journal`` the
    rollback journal entry (None when there was none).
    """

    script: str | None
    candidate_version: int | None
    endpoint: str | None
    transport: str
    started_at: str
    finished_at: str
    verdict: Verdict
    exit_code: int
    incident: str | None = None
    verification_of: int | None = None
    preflight: Preflight | None = None
    rollback: RollbackResult | None = None
    tests: tuple[TestRecord, ...] = ()
    evidence: Mapping[str, str] = field(default_factory=dict)
    selection: Selection | None = None
    hook_errors: tuple[HookError, ...] = ()
    journal: Mapping[str, Any] | None = None
    """The rollback journal entry this session wrote or found open (``_session.journal``), as a dict."""
    concurrency: Mapping[str, Any] | None = None
    """The in-flight limit's course in this process (``runner.InFlightLimit.record``: mode, start,
    cap, max_limit, max_reached, backoffs, pushbacks, final); None when no run was dispatched."""
    shard: Mapping[str, Any] | None = None
    """``--scriptum-shard``: ``{index, total, nodeids_sha}`` (``_session.shard.ShardRecord``); None
    in an unsharded session."""
    suite_nodeids: tuple[str, ...] | None = None
    """A shard's view of the whole suite: every selected smoke node id, sorted (None unsharded)."""
    deferred: bool = False
    """``--scriptum-rollback=defer``: a shard whose gate the merge decides (role ``shard``)."""
    merged: bool = False
    """Written by ``scriptum-gate merge`` over every shard's records (role ``merged``)."""
    publish: Mapping[str, Any] | None = None
    """DESIGN section 8: the draft candidate and/or the publish (``_session.promotion.PublishRecord``
    as a dict: mode, draft_sha, version, previous_active, status, message); None otherwise."""

    env_changes: Mapping[str, Any] | None = None
    """DESIGN section 8: ``_session.env_promotion.EnvChanges`` as a dict (imported, overlay_set,
    overlay_deleted, restored, kept, restore, message; keys and keyed fingerprints only); None when
    the session changed no env."""

    @property
    def candidate_label(self) -> str:
        """The candidate as the summary names it: ``v4``, or ``draft`` (nothing published)."""
        if self.candidate_version is None and self.publish is not None:
            return "draft"
        return f"v{self.candidate_version}"

    @property
    def role(self) -> Role:
        """``verification`` for the re-run after a rollback, ``shard`` for a deferred shard, else
        ``candidate``."""
        if self.verification_of is not None:
            return "verification"
        if self.merged:
            return "merged"
        return "shard" if self.deferred else "candidate"
