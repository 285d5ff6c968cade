"""The check ``scriptum-gate merge`` starts with (DESIGN section 8 "Sharded CI gate", issue 17):
the shard bundles given cover the suite exactly once for one candidate.

Pure: bundles in (already read and validated against the bundle schema), a ``ShardSet`` or a
``ShardSetError`` out. Every problem found is named (a missing, duplicated, foreign, broken or stale
shard makes the merged gate inconclusive: nothing is rolled back on a suite that did not run whole).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pytest_scriptum._session.shard import nodeids_sha

__all__ = ["ShardSet", "ShardSetError", "check_shards", "parse_age"]

_AGE = re.compile(r"(\d{1,6})([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> timedelta:
    """``--max-age``: a whole number with a unit, ``90s``, ``30m``, ``6h`` or ``2d``; ValueError else."""
    match = _AGE.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"--max-age={text!r}: expected a positive number with s, m, h or d (e.g. 6h)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_S[match.group(2)])


class ShardSetError(Exception):
    """The bundles do not make one whole suite run; ``problems`` lists every reason, one a line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class ShardSet:
    """Shard bundles that cover one candidate's suite exactly once: ``bundles`` by shard index
    (``(path, bundle)``), the candidate (``script``, ``candidate_version``, ``endpoint``), the
    suite's node ids, and every per-test record of every shard (``tests``, bundle ``tests[]``
    entries in the suite's order)."""

    bundles: tuple[tuple[str, Mapping[str, Any]], ...]
    script: str
    candidate_version: int
    endpoint: str | None
    suite_nodeids: tuple[str, ...]
    tests: tuple[Mapping[str, Any], ...]

    @property
    def total(self) -> int:
        return len(self.bundles)


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _some(nodeids: Sequence[str]) -> str:
    return ", ".join(nodeids[:5]) + (f" and {len(nodeids) - 5} more" if len(nodeids) > 5 else "")


def _settings(bundle: Mapping[str, Any]) -> str:
    gate = bundle["gate"]
    return " ".join(f"{name}={gate[name]}" for name in ("min_pass_rate", "min_tests", "max_errors"))


def _seen(bundle: Mapping[str, Any]) -> str:
    preflight = bundle.get("preflight") or {}
    return f"{preflight.get('active_version')}/{preflight.get('rollback_target')}"


def _candidate(bundle: Mapping[str, Any]) -> str:
    return f"{bundle['script']} v{bundle['candidate_version']} at endpoint {bundle['endpoint']}"


def check_shards(
    given: Sequence[tuple[str, Mapping[str, Any]]], *, max_age: timedelta, now: datetime
) -> ShardSet:
    """The ``ShardSet`` of ``given`` (``(path, bundle)`` pairs), or ShardSetError naming every
    problem: a bundle that is not a shard's (role ``shard``) or whose shard broke (exit code not 0),
    a candidate (script, version, endpoint), gate settings, suite node-id list or preflight view
    (active version, rollback target) other than the first bundle's, a
    shard index missing or given twice, a node id run by two shards or by none (or not in the
    suite), a bundle whose tests do not match its ``nodeids_sha``, one finished before
    ``now - max_age`` (``now``: an aware datetime)."""
    if not given:
        raise ShardSetError(["no shard bundle given"])
    problems: list[str] = []
    first_path, first = given[0]
    by_index: dict[int, list[str]] = {}
    totals: set[int] = set()
    ran_by: dict[str, list[str]] = {}
    for path, bundle in given:
        shard = bundle.get("shard")
        if bundle.get("role") != "shard" or not isinstance(shard, Mapping):
            problems.append(
                f"{path}: not a shard bundle (role {bundle.get('role')}; a shard runs with "
                "--scriptum-shard=I/N --scriptum-rollback=defer)"
            )
            continue
        label = f"shard {shard['index']}/{shard['total']} ({path})"
        if bundle["exit_code"] != 0:
            problems.append(f"{label} broke (exit {bundle['exit_code']}): {bundle['reason']}")
        if _candidate(bundle) != _candidate(first):
            problems.append(
                f"foreign shard: {label} is {_candidate(bundle)}, {first_path} is {_candidate(first)}"
            )
        if _seen(bundle) != _seen(first):
            problems.append(
                f"{label}: its preflight saw active version / rollback target {_seen(bundle)}, "
                f"{first_path}'s saw {_seen(first)} (the platform changed between the shards)"
            )
        if _settings(bundle) != _settings(first):
            problems.append(f"{label}: gate settings {_settings(bundle)}, {first_path}'s {_settings(first)}")
        if bundle.get("suite_nodeids") != first.get("suite_nodeids"):
            problems.append(f"{label}: its suite's node-id list differs from {first_path}'s")
        finished = _timestamp(bundle["finished_at"])
        if now - finished > max_age:
            problems.append(f"{label}: finished at {bundle['finished_at']}, older than the bound ({max_age})")
        ran = [test["nodeid"] for test in bundle["tests"]]
        if nodeids_sha(ran) != shard["nodeids_sha"]:
            problems.append(f"{label}: its tests do not match its nodeids_sha (an edited bundle?)")
        by_index.setdefault(shard["index"], []).append(path)
        totals.add(shard["total"])
        for nodeid in ran:
            ran_by.setdefault(nodeid, []).append(label)
    if len(totals) > 1:
        problems.append(f"the bundles disagree on the number of shards: {sorted(totals)}")
    total = max(totals) if totals else 0
    for index, paths in sorted(by_index.items()):
        if len(paths) > 1:
            problems.append(f"shard {index}/{total} given {len(paths)} times: {', '.join(paths)}")
    missing = [index for index in range(1, total + 1) if index not in by_index]
    if missing:
        names = ", ".join(f"{i}/{total}" for i in missing)
        problems.append(f"shard{'s' if len(missing) > 1 else ''} missing: {names}")
    suite = tuple(first.get("suite_nodeids") or ())
    if not problems:
        # Coverage, once the set is otherwise whole (a missing shard already says what is not run).
        twice = sorted(nodeid for nodeid, labels in ran_by.items() if len(labels) > 1)
        if twice:
            problems.append(f"run by more than one shard: {_some(twice)}")
        unrun = [nodeid for nodeid in suite if nodeid not in ran_by]
        if unrun:
            problems.append(f"run by no shard: {_some(unrun)}")
        extra = sorted(set(ran_by) - set(suite))
        if extra:
            problems.append(f"not in the suite's node-id list: {_some(extra)}")
    if problems:
        raise ShardSetError(problems)
    ordered = tuple(sorted(given, key=lambda pair: int(pair[1]["shard"]["index"])))
    records = {test["nodeid"]: test for _, bundle in ordered for test in bundle["tests"]}
    return ShardSet(
        bundles=ordered,
        script=str(first["script"]),
        candidate_version=int(first["candidate_version"]),
        endpoint=first["endpoint"],
        suite_nodeids=suite,
        tests=tuple(records[nodeid] for nodeid in suite),
    )
