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

__all__ = [
    "Attempt",
    "HookError",
    "PinnedRun",
    "Repeats",
    "Role",
    "Selection",
    "SessionOutcome",
    "TestRecord",
    "utc_now",
]

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


@dataclass(frozen=True, slots=True)  # thousands per session, kept to its end (DESIGN section 6)
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
class Attempt:
    """One attempt of a repeated smoke case (DESIGN section 8 "Repeats"): its 1-based ``index``,
    its thread (``thread_id`` and platform ``status``; None when no thread was created), how its
    checks ended (``outcome``: passed, failed, or error when the platform erred and the attempt
    decided nothing) and ``error``: the first failed check or the platform's error (None on a pass)."""

    index: int
    outcome: Literal["passed", "failed", "error"]
    thread_id: str | None = None
    status: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """One entry of the bundle's ``repeat.attempts``."""
        return asdict(self)


@dataclass(frozen=True)
class Repeats:
    """A repeated smoke case: ``repeat`` attempts (N), ``min_pass`` passing decided attempts needed
    (K), the ``attempts`` in index order and the case's ``verdict`` line ("3 of 5 < 4").

    ``pass_hat_n`` is pass^N (tau-bench's pass^k with k = N, for one case): 1 when every one of
    the N attempts passed, else 0; ``pass_rate`` is passed / decided (None when nothing decided).
    """

    repeat: int
    min_pass: int
    attempts: tuple[Attempt, ...]
    verdict: str

    def _count(self, outcome: str) -> int:
        return sum(a.outcome == outcome for a in self.attempts)

    @property
    def passed(self) -> int:
        """Attempts whose checks all held."""
        return self._count("passed")

    @property
    def failed(self) -> int:
        """Decided attempts with a failed check."""
        return self._count("failed")

    @property
    def errors(self) -> int:
        """Attempts the platform errored (charged to the error budget, not decided)."""
        return self._count("error")

    @property
    def pass_hat_n(self) -> int:
        """pass^N: 1 when all N attempts passed, else 0."""
        return int(self.passed == self.repeat)

    @property
    def pass_rate(self) -> float | None:
        """passed / decided attempts; None when none was decided."""
        decided = self.passed + self.failed
        return self.passed / decided if decided else None

    def as_dict(self) -> dict[str, Any]:
        """The bundle's ``repeat`` object of a test."""
        return {
            "repeat": self.repeat,
            "min_pass": self.min_pass,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "pass_hat_n": self.pass_hat_n,
            "pass_rate": self.pass_rate,
            "verdict": self.verdict,
            "attempts": [a.as_dict() for a in self.attempts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Repeats:
        """The inverse of ``as_dict`` (the counts are derived from the attempts)."""
        return cls(
            repeat=int(data["repeat"]),
            min_pass=int(data["min_pass"]),
            attempts=tuple(Attempt(**a) for a in data["attempts"]),
            verdict=str(data["verdict"]),
        )


@dataclass(frozen=True, slots=True)  # thousands per session, kept to its end (DESIGN section 6)
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
    advisory: bool = False
    """``scriptum(advisory=True)``: run and reported, never part of the verdict (DESIGN section 8)"""
    repeat: Repeats | None = None
    """a repeated case's attempts (``scriptum(repeat=N)``, ``--scriptum-repeat``); None for one run"""
    baseline: Mapping[str, Any] | None = None
    """the paired baseline side (``--scriptum-baseline=paired``): ``version``, ``outcome``,
    ``verdict`` and ``attempts`` of the same case on the rollback target; None unpaired"""

    def as_dict(self) -> dict[str, Any]:
        """The bundle's ``tests[]`` entry (the run's fields inline)."""
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "critical": self.critical,
            **asdict(self.run),
            "error": self.error,
            "attempts": self.attempts,
            "advisory": self.advisory,
            "repeat": self.repeat.as_dict() if self.repeat is not None else None,
            "baseline": dict(self.baseline) if self.baseline is not None else None,
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

