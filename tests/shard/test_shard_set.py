"""The merge's first step (issue 17): the shard bundles must cover one candidate's suite exactly
once. The bundles are real: shard sessions of the example suite (``--scriptum-shard=I/3
--scriptum-rollback=defer``) run once per test run; the cases that need a wrong set take copies.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kit import ENV_VARS, EXAMPLE_SUITE
from kit.evidence import read_valid_bundle
from kit.sessions import wait_all
from kit.shared import once_per_run

from pytest_scriptum._session.shard_set import ShardSetError, check_shards, parse_age

pytestmark = pytest.mark.slow  # real sessions, seconds each: scheduled first (tests/conftest.py)

Bundles = dict[str, tuple[str, dict[str, Any]]]
HOUR = timedelta(hours=1)


def _start_shard(suite: Path, bundle: Path, shard: str, version: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS and not k.startswith("PYTEST_")}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--scriptum-version={version}",
         f"--scriptum-shard={shard}", "--scriptum-rollback=defer", f"--scriptum-evidence={bundle}"],
        cwd=suite, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


# name -> (shard, candidate version): shards 1..3 of v4, and shard 1 of v5 (another candidate).
SHARDS = {"v4-1": ("1/3", 4), "v4-2": ("2/3", 4), "v4-3": ("3/3", 4), "v5-1": ("1/3", 5)}


def _run_shards(into: Path) -> None:
    """The four shard sessions, at once as a CI matrix runs them (each starts its own embedded
    server, so they share nothing but the suite's files); each must exit 0."""
    suite = into / "suite"
    shutil.copytree(EXAMPLE_SUITE, suite, ignore=shutil.ignore_patterns("evidence", "__pycache__"))
    running = {
        name: _start_shard(suite, suite / "evidence" / f"{name}.json", shard, version)
        for name, (shard, version) in SHARDS.items()
    }
    wait_all(running, "shard session")


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    """Shards 1..3 of v4, and shard 1 of v5 (another candidate): real shard sessions of the
    example suite, run once per test run (``kit.shared``: the tests only read them, and copy
    what they change)."""
    evidence = once_per_run(tmp_path_factory, "shard-set-bundles", _run_shards) / "suite" / "evidence"
    paths = {name: evidence / f"{name}.json" for name in SHARDS}
    return {name: (str(path), read_valid_bundle(path)) for name, path in paths.items()}


def now_after(*bundles: tuple[str, dict[str, Any]]) -> datetime:
    latest = max(b["finished_at"] for _, b in bundles)
    return datetime.fromisoformat(latest.replace("Z", "+00:00")) + timedelta(seconds=1)


def problems(given: list[tuple[str, dict[str, Any]]], **kwargs: Any) -> list[str]:
    with pytest.raises(ShardSetError) as caught:
        check_shards(given, max_age=kwargs.get("max_age", HOUR), now=kwargs.get("now", now_after(*given)))
    return list(caught.value.problems)


def test_three_shards_make_one_suite_run(shards: Bundles) -> None:
    given = [shards["v4-3"], shards["v4-1"], shards["v4-2"]]  # any order
    merged = check_shards(given, max_age=HOUR, now=now_after(*given))
    assert merged.total == 3 and [b["shard"]["index"] for _, b in merged.bundles] == [1, 2, 3]
    assert (merged.script, merged.candidate_version) == ("invoice-parser", 4)
    assert [t["nodeid"] for t in merged.tests] == list(merged.suite_nodeids)
    assert len(merged.suite_nodeids) >= 20
    assert sum(t["outcome"] == "failed" for t in merged.tests) == 3  # the README's v4 regressions


def test_a_missing_shard(shards: Bundles) -> None:
    found = problems([shards["v4-1"], shards["v4-3"]])
    assert found == ["shard missing: 2/3"]


def test_the_same_shard_twice(shards: Bundles) -> None:
    found = problems([shards["v4-1"], shards["v4-2"], shards["v4-2"], shards["v4-3"]])
    path = shards["v4-2"][0]
    assert found == [f"shard 2/3 given 2 times: {path}, {path}"]


def test_a_shard_of_another_candidate(shards: Bundles) -> None:
    found = problems([shards["v4-2"], shards["v5-1"], shards["v4-3"]])
    other = shards["v5-1"][0]
    assert any(
        p.startswith(f"foreign shard: shard 1/3 ({other}) is invoice-parser v5 at endpoint embedded, ")
        and p.endswith("is invoice-parser v4 at endpoint embedded")
        for p in found
    ), found


def test_a_stale_shard(shards: Bundles) -> None:
    given = [shards["v4-1"], shards["v4-2"], shards["v4-3"]]
    found = problems(given, now=now_after(*given) + timedelta(hours=7), max_age=parse_age("6h"))
    assert len(found) == 3 and all("older than the bound (6:00:00)" in p for p in found), found


def test_a_broken_or_edited_shard(shards: Bundles) -> None:
    broken = copy.deepcopy(shards["v4-2"][1])
    broken["exit_code"], broken["reason"] = 20, "shard 2/3 broke: preflight failed: x"
    edited = copy.deepcopy(shards["v4-3"][1])
    edited["tests"] = edited["tests"][1:]
    found = problems([shards["v4-1"], ("two.json", broken), ("three.json", edited)])
    assert "shard 2/3 (two.json) broke (exit 20): shard 2/3 broke: preflight failed: x" in found
    assert "shard 3/3 (three.json): its tests do not match its nodeids_sha (an edited bundle?)" in found


def test_a_bundle_that_is_not_a_shard(shards: Bundles) -> None:
    whole = copy.deepcopy(shards["v4-1"][1])
    whole["role"], whole["shard"] = "candidate", None
    found = problems([("whole.json", whole), shards["v4-2"], shards["v4-3"]])
    assert found[0].startswith("whole.json: not a shard bundle (role candidate;"), found
    assert json.dumps(found)  # plain text, ready for the summary


@pytest.mark.parametrize("text", ["0h", "6", "h", "-1h", "1.5h", "6 hours"])
def test_a_bad_max_age(text: str) -> None:
    with pytest.raises(ValueError, match="expected a positive number with s, m, h or d"):
        parse_age(text)


def test_shards_that_saw_different_platforms(shards: Bundles) -> None:
    changed = copy.deepcopy(shards["v4-3"][1])
    changed["preflight"]["active_version"] = 3
    found = problems([shards["v4-1"], shards["v4-2"], ("three.json", changed)])
    assert found == [
        f"shard 3/3 (three.json): its preflight saw active version / rollback target 3/3, "
        f"{shards['v4-1'][0]}'s saw 4/3 (the platform changed between the shards)"
    ]


def test_shards_with_other_gate_settings(shards: Bundles) -> None:
    laxer = copy.deepcopy(shards["v4-2"][1])
    laxer["gate"]["min_pass_rate"] = 0.5
    found = problems([shards["v4-1"], ("two.json", laxer), shards["v4-3"]])
    assert found == [
        "shard 2/3 (two.json): gate settings min_pass_rate=0.5 min_tests=1 max_errors=0, "
        f"{shards['v4-1'][0]}'s min_pass_rate=1.0 min_tests=1 max_errors=0"
    ]
