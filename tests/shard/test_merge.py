"""``scriptum-gate merge`` (issue 17): three real shard sessions of the example suite against ONE
dev server process, then the merge as its own process — it decides once, rolls back once (the
server's activation history), verifies with a real pytest re-run, and writes the merged evidence.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from kit import ORG, TOKEN, Platform
from kit.evidence import every_file, labels, read_allure, read_junit, read_valid_bundle
from kit.interrupts import processes_with_env

from pytest_scriptum._options import VERIFICATION_OPTIONS_ENV

pytestmark = pytest.mark.slow  # real sessions, seconds each: scheduled first (tests/conftest.py)

MERGE = [sys.executable, "-m", "pytest_scriptum._session.merge", "merge"]
COUNTS = ("passed", "failed", "errors", "skipped", "critical_failed", "critical_undecided")


def run_shards(
    suite: pytest.Pytester, platform: Platform, version: int, indexes: tuple[int, ...]
) -> list[Path]:
    """Shard sessions of ``version`` (``indexes`` of 3). Shard 2 runs in its own process under
    xdist (``-n 2``), started first and running while the others run in this process one after
    the other: shards of one matrix overlap on the platform, as CI jobs do."""
    paths, argvs = [], {}
    for index in indexes:
        bundle = suite.path / "evidence" / f"v{version}-shard-{index}.json"
        argvs[index] = platform.args(
            f"--scriptum-shard={index}/3",
            "--scriptum-rollback=defer",
            f"--scriptum-evidence={bundle}",
            version=version,
        )
        paths.append(bundle)
    xdist_shard = None
    if 2 in argvs:  # what runpytest_subprocess runs, without waiting for it
        basetemp = tempfile.mkdtemp(prefix="runpytest-", dir=suite.path)
        xdist_shard = suite.popen(
            [sys.executable, "-mpytest", f"--basetemp={basetemp}", *argvs[2], "-n", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    try:
        for index, argv in argvs.items():
            if index != 2:
                result = suite.runpytest(*argv)
                assert result.ret == 0, result.stdout.str()
        if xdist_shard is not None:
            output, _ = xdist_shard.communicate(timeout=300)
            assert xdist_shard.returncode == 0, output
    finally:
        if xdist_shard is not None and xdist_shard.poll() is None:
            xdist_shard.kill()
            xdist_shard.wait()
    return paths


def merge_env(suite: pytest.Pytester, platform: Platform) -> dict[str, str]:
    """What the merge job has: the shards' platform and token in its environment, nothing else."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(suite.path),
        # The package under test, when it is not the installed one (a worktree on PYTHONPATH).
        **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
        "DODIL_TOKEN": TOKEN,
        "SCRIPTUM_ENDPOINT": platform.grpc,
        "SCRIPTUM_HTTP_URL": platform.http,
        "SCRIPTUM_ORG_ID": ORG,
    }


def merge(
    suite: pytest.Pytester, platform: Platform, *args: str | Path, without: str = ""
) -> subprocess.CompletedProcess[str]:
    env = merge_env(suite, platform)
    env.pop(without, None)
    return subprocess.run(
        [*MERGE, *map(str, args)],
        cwd=suite.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def gate_counts(bundle: dict[str, Any]) -> dict[str, Any]:
    return {name: bundle["gate"][name] for name in COUNTS}


def test_three_shards_of_v4_merge_into_one_verified_rollback(
    suite: pytest.Pytester, platform: Platform
) -> None:
    # The single-session run of the same suite (rollback off: the platform stays on v4).
    single_path = suite.path / "evidence" / "single.json"
    argv = platform.args("--scriptum-rollback=off", f"--scriptum-evidence={single_path}", version=4)
    single = suite.runpytest(*argv)
    assert single.ret == 1, single.stdout.str()
    assert platform.active() == 4 and not platform.rollbacks_in_history()

    shards = run_shards(suite, platform, 4, (1, 2, 3))
    assert platform.active() == 4 and not platform.rollbacks_in_history()  # no shard rolled back

    out = suite.path / "evidence" / "merged.json"
    junit_file = suite.path / "evidence" / "merged.xml"
    alluredir = suite.path / "allure-results"
    done = merge(
        suite, platform, *shards, "--evidence", out, "--junitxml", junit_file, "--alluredir", alluredir
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "verdict: FAIL - critical test failed: smoke/test_invoice_smoke.py::test_prod_smoke" in done.stdout
    assert "rollback: rolled_back_verified - rolled back invoice-parser v4 -> v3" in done.stdout

    # exactly one rollback on the server, to v3
    assert platform.active() == 3
    assert len(platform.rollbacks_in_history()) == 1

    merged = read_valid_bundle(out)
    assert merged["role"] == "merged" and merged["verdict"] == "fail" and merged["exit_code"] == 1
    assert gate_counts(merged) == gate_counts(read_valid_bundle(single_path))
    assert len(merged["tests"]) == len(read_valid_bundle(single_path)["tests"])
    assert merged["rollback"]["status"] == "rolled_back_verified"
    verification = merged["rollback"]["verification"]
    assert verification["version"] == 3 and verification["verdict"] == "pass"
    assert merged["journal"]["state"] == "closed" and merged["journal"]["status"] == "rolled_back_verified"
    written = read_junit(junit_file)
    assert written.suite_properties["scriptum.verdict"] == "fail"
    assert sum(case.failed for case in written.cases.values()) == 3
    results = read_allure(alluredir)
    assert results.one("scriptum gate invoice-parser v4: fail", "invoice-parser v4 (promotion gate)")
    # the verification re-run's per-test results beside them, under the verification's node
    assert any(
        labels(r).get("parentSuite") == "invoice-parser v3 (verification of v4)" for r in results.results
    ), results.names()
    # the token is nowhere: not in the output, not in any file written
    assert TOKEN not in done.stdout + done.stderr
    written_files = every_file(suite.path / "evidence", alluredir)
    assert not [p for p in written_files if TOKEN in p.read_text(errors="replace")]


def test_three_shards_of_v5_pass(suite: pytest.Pytester, platform: Platform) -> None:
    platform_before = len(platform.history())
    shards = run_shards(suite, platform, 5, (1, 2, 3))
    done = merge(suite, platform, *shards, "--evidence", suite.path / "evidence" / "merged.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: PASS" in done.stdout
    assert len(platform.history()) == platform_before and platform.active() == 4


def test_refused_shard_sets_are_inconclusive_and_roll_nothing_back(
    suite: pytest.Pytester, platform: Platform
) -> None:
    shards = run_shards(suite, platform, 4, (1, 2, 3))
    (other,) = run_shards(suite, platform, 5, (1,))
    out = suite.path / "evidence" / "merged.json"

    missing = merge(suite, platform, shards[0], shards[2], "--evidence", out)
    assert missing.returncode == 20, missing.stdout + missing.stderr
    assert "scriptum-gate merge: inconclusive, nothing rolled back:" in missing.stdout
    assert "  - shard missing: 2/3" in missing.stdout

    twice = merge(suite, platform, shards[0], shards[1], shards[1], shards[2])
    assert twice.returncode == 20, twice.stdout + twice.stderr
    assert f"  - shard 2/3 given 2 times: {shards[1]}, {shards[1]}" in twice.stdout

    foreign = merge(suite, platform, other, shards[1], shards[2])
    assert foreign.returncode == 20, foreign.stdout + foreign.stderr
    # the first bundle given is the reference; each one that differs is named with both candidates
    assert (
        f"  - foreign shard: shard 2/3 ({shards[1]}) is invoice-parser v4 at endpoint {platform.grpc}, "
        f"{other} is invoice-parser v5 at endpoint {platform.grpc}"
    ) in foreign.stdout
    assert "shard 1/3 given" not in foreign.stdout  # v5's shard 1 stands for the missing v4 one

    # none of them wrote a merged bundle or touched the platform
    assert not out.exists()
    assert platform.active() == 4 and not platform.rollbacks_in_history()

    # a whole set, but the merge job cannot reach the shards' platform: inconclusive, evidence written
    unreachable = merge(suite, platform, *shards, "--evidence", out, without="SCRIPTUM_ENDPOINT")
    assert unreachable.returncode == 20, unreachable.stdout + unreachable.stderr
    assert "verdict: INCONCLUSIVE - gate failed but cannot roll back: the shards ran against endpoint" in (
        unreachable.stdout
    )
    assert read_valid_bundle(out)["rollback"] is None
    assert platform.active() == 4 and not platform.rollbacks_in_history()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_the_merges_verification_stops_it_and_reports_the_state(
    suite: pytest.Pytester, platform: Platform, sig: signal.Signals
) -> None:
    """As a gated session (issue 12): a CI cancel while the merge's verification re-run is in
    flight stops the re-run's process group, reads the platform back, writes the evidence with
    `interrupted`, and exits 21 — never a traceback, never an orphaned re-run."""
    shards = run_shards(suite, platform, 4, (1, 2, 3))
    runs_by_shards = platform.calls("CreateThread")
    # Hold every run the verification starts: the moment to signal is "its first run arrived".
    platform.set_faults(latency_ms=120_000, methods=["CreateThread"])
    out = suite.path / "evidence" / "merged.json"
    env = merge_env(suite, platform)
    proc = subprocess.Popen(
        [*MERGE, *map(str, shards), "--evidence", str(out)],
        cwd=suite.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        platform.wait_for(
            lambda stats: stats.calls.get("CreateThread", 0) > runs_by_shards,
            "the merge's verification re-run reached the platform",
            timeout_s=120,
        )
        options = next((suite.path / "evidence").glob("verification-v3.options.json"))
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 21, output
    assert "Traceback" not in output
    assert f"then {sig.name} stopped the session" in output
    assert "exit code: 21" in output
    assert platform.active() == 3 and len(platform.rollbacks_in_history()) == 1
    merged = read_valid_bundle(out)
    assert (merged["exit_code"], merged["rollback"]["status"], merged["rollback"]["active_after"]) == (
        21,
        "interrupted",
        3,
    )
    assert merged["journal"]["state"] == "closed" and merged["journal"]["status"] == "interrupted"
    # The re-run and everything in its process group are gone.
    assert processes_with_env(VERIFICATION_OPTIONS_ENV, str(options)) == []
