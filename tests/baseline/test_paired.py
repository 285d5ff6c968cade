"""The paired baseline (DESIGN section 8, issue 16): with ``--scriptum-baseline=paired`` every case
also runs on the rollback target, concurrently and with the same input and env. A revoked key
fails both sides: an error (environmental), never a rollback; a real regression fails the
candidate alone: a failure, rolled back and verified. The server is read back afterwards."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kit.constants import ORG, TOKEN
from kit.evidence import read_junit, read_valid_bundle
from kit.platform import Platform
from kit.seeds import write_seed
from kit.seeds.assist import CASES, KEY, REGRESSED

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.devserver import DevServer

EXPECTED = {case: n * 2 for n, case in enumerate(CASES, start=1)}


def write_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nscriptum_script = assist\nscriptum_evidence = evidence/bundle.json\n"
        "scriptum_baseline = paired\n"
    )


def write_suite(pytester: pytest.Pytester, *, extra: str = "") -> None:
    write_ini(pytester)
    tests = [
        f"""
@pytest.mark.smoke_input({{"q": {case!r}, "n": {n}}})
@pytest.mark.smoke_expect({{"answer": {EXPECTED[case]}}})
def test_{case}():
    pass
"""
        for n, case in enumerate(CASES, start=1)
    ]
    pytester.makepyfile(test_assist="import pytest\n" + "".join(tests) + extra)


def run(pytester: pytest.Pytester, platform: Platform, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*platform.args(version=4), "--junitxml=evidence/junit.xml", *args)


def bundle_of(pytester: pytest.Pytester) -> dict[str, Any]:
    return read_valid_bundle(pytester.path / "evidence" / "bundle.json")


def set_overlay(platform: Platform, *, delete: tuple[str, ...] = (), **values: str) -> None:
    request = pb.UpdateScriptEnvRequest(name="assist", set=values, delete=list(delete))
    platform.stub.UpdateScriptEnv(request, metadata=platform.metadata, timeout=10)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_revoked_key_is_environmental_and_a_regression_rolls_back(
    pytester: pytest.Pytester, platform: Platform, workers: str
) -> None:
    write_suite(pytester)
    # 1. The key is gone: v4 and v3 both fail every case -> errors, inconclusive, nothing rolled back.
    set_overlay(platform, delete=(KEY,))
    result = run(pytester, platform, "-n", workers)
    assert result.ret == 20, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "verdict: INCONCLUSIVE - 5 errors > allowed 0: *; baseline v3 also failed 5 of 5",
            "paired baseline: baseline v3 also failed 5 of 5 (environmental*",
        ]
    )
    bundle = bundle_of(pytester)
    assert bundle["verdict"] == "inconclusive" and bundle["rollback"] is None
    assert bundle["baseline"]["text"] == "baseline v3 also failed 5 of 5"
    assert (bundle["baseline"]["regressions"], bundle["gate"]["errors"]) == (0, 5)
    for test in bundle["tests"]:
        assert test["outcome"] == "error"
        assert test["error"].startswith("environmental: failed on the candidate")
        assert test["baseline"]["version"] == 3 and test["baseline"]["outcome"] == "failed"
    assert platform.calls("RollbackScript") == 0 and platform.active() == 4
    # Both sides really ran on the server: 5 threads on v4 and 5 on v3, all FAILED for the key.
    threads = platform.threads()
    assert sorted(t.version for t in threads) == [3] * 5 + [4] * 5
    assert {t.status for t in threads} == {pb.THREAD_STATUS_FAILED}

    # 2. The key is back: v4's 3 regressed cases fail on v4 alone -> regressions, rolled back, verified.
    set_overlay(platform, **{KEY: "sk-kit-fake-0001"})
    result = run(pytester, platform, "-n", workers)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "verdict: FAIL - failed 3 of 5 > allowed 0; baseline v3 also failed 0 of 3",
            "rollback: rolled_back_verified*",
        ]
    )
    bundle = bundle_of(pytester)
    outcomes = {t["nodeid"].split("::")[-1]: t["outcome"] for t in bundle["tests"]}
    assert outcomes == {f"test_{c}": ("failed" if c in REGRESSED else "passed") for c in CASES}
    regressions = [t for t in bundle["tests"] if t["outcome"] == "failed"]
    assert all(t["error"].startswith("regression: failed on the candidate") for t in regressions)
    assert bundle["baseline"]["regressions"] == 3 and bundle["baseline"]["also_failed"] == 0
    assert bundle["rollback"]["status"] == "rolled_back_verified"
    assert platform.calls("RollbackScript") == 1 and platform.active() == 3
    # The verification re-run is not paired (it runs on the target itself): 5 more threads on v3.
    versions = [t.version for t in platform.threads()]
    assert (versions.count(4), versions.count(3)) == (10, 15)
    child = json.loads(open(bundle["rollback"]["verification"]["bundle"]).read())
    assert child["baseline"] is None and {t["version"] for t in child["tests"]} == {3}


def test_a_baseline_error_leaves_the_case_undecided(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    write_ini(pytester)
    pytester.makepyfile(
        test_assist="""
import pytest

@pytest.mark.smoke_input({"q": "q1", "n": 1, "crash_baseline": True})
@pytest.mark.smoke_expect({"answer": 2})
def test_regressed_but_baseline_crashed():
    pass

@pytest.mark.smoke_input({"q": "q4", "n": 4, "crash_baseline": True})
@pytest.mark.smoke_expect({"answer": 8})
def test_passes_on_the_candidate():
    pass
"""
    )
    result = run(pytester, platform)
    assert result.ret == 20, result.stdout.str()
    tests = {t["nodeid"].split("::")[-1]: t for t in bundle_of(pytester)["tests"]}
    undecided = tests["test_regressed_but_baseline_crashed"]
    assert undecided["outcome"] == "error"
    assert undecided["error"].startswith("undecided: failed on the candidate")
    assert "PLATFORM_RUNTIME_CRASH" in undecided["baseline"]["attempts"][0]["error"]
    # A candidate pass is a pass whatever the baseline did.
    assert tests["test_passes_on_the_candidate"]["outcome"] == "passed"
    assert platform.calls("RollbackScript") == 0 and platform.active() == 4


def test_the_body_judges_both_sides_and_can_compare_them(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    write_ini(pytester)
    pytester.makepyfile(
        test_assist="""
import pytest

@pytest.mark.smoke_input({"q": "q1", "n": 1})
def test_q1(smoke_thread, smoke_baseline):
    assert smoke_baseline.version == 3
    assert smoke_thread.output["answer"] == smoke_baseline.output["answer"]

@pytest.mark.smoke_input({"q": "q4", "n": 4})
def test_q4(smoke_thread, smoke_baseline):
    assert smoke_thread.output["answer"] == smoke_baseline.output["answer"] == 8
"""
    )
    result = run(pytester, platform, "--junitxml=evidence/junit.xml")
    assert result.ret == 1, result.stdout.str()
    tests = {t["nodeid"].split("::")[-1]: t for t in bundle_of(pytester)["tests"]}
    assert tests["test_q1"]["outcome"] == "failed" and tests["test_q1"]["error"].startswith("regression")
    assert tests["test_q4"]["outcome"] == "passed"
    # The baseline side ran the same body with its own result as smoke_thread: it held there.
    assert tests["test_q1"]["baseline"]["outcome"] == "passed"
    case = read_junit(pytester.path / "evidence" / "junit.xml").cases["test_q1"]
    assert case.failed
    assert (case.properties["scriptum.baseline.version"], case.properties["scriptum.baseline.outcome"]) == (
        "3",
        "passed",
    )
    assert case.properties["scriptum.baseline.thread_ids"].startswith("thr_")


def test_smoke_baseline_without_paired_is_the_tests_error(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    pytester.makeini("[pytest]\nscriptum_script = assist\n")
    pytester.makepyfile(
        test_assist="""
import pytest

@pytest.mark.smoke_input({"q": "q4", "n": 4})
def test_q4(smoke_baseline):
    pass
"""
    )
    result = run(pytester, platform)
    assert result.ret == 20, result.stdout.str()
    result.stdout.fnmatch_lines(["*the smoke_baseline fixture needs --scriptum-baseline=paired*"])


def test_a_bad_baseline_value_is_a_usage_error(pytester: pytest.Pytester, platform: Platform) -> None:
    write_suite(pytester)
    result = run(pytester, platform, "--scriptum-baseline=twin")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--scriptum-baseline*accepted values: off, paired*"])


def test_paired_without_a_rollback_target_fails_preflight(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One version, active since the seed: the history names nothing to roll back to.
    handler = "def handler(event, context):\n    return {'answer': event['n'] * 2}\n"
    seed = write_seed(tmp_path_factory.mktemp("solo"), script="assist", versions={1: handler}, active=1)
    monkeypatch.setenv("DODIL_TOKEN", TOKEN)
    data = tmp_path_factory.mktemp("solo-data")
    with DevServer(data_dir=data, seed=seed, principals={TOKEN: ORG}) as server:
        solo = Platform.of(server, token=TOKEN, org=ORG, script="assist")
        write_suite(pytester)
        result = pytester.runpytest_subprocess(*solo.args(version=1))
        assert result.ret == 20, result.stdout.str()
        result.stdout.fnmatch_lines(
            ["*preflight failed: *--scriptum-baseline=paired needs a rollback target*"]
        )
        assert solo.calls("CreateThread") == 0
        solo.channel.close()


def test_paired_and_repeated_runs_n_attempts_on_each_side(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    write_ini(pytester)
    pytester.makepyfile(
        test_assist="""
import pytest

pytestmark = pytest.mark.scriptum(repeat=3, min_pass=2)

@pytest.mark.smoke_input({"q": "q1", "n": 1})
@pytest.mark.smoke_expect({"answer": 2})
def test_q1():
    pass

@pytest.mark.smoke_input({"q": "q4", "n": 4})
@pytest.mark.smoke_expect({"answer": 8})
def test_q4():
    pass
"""
    )
    result = run(pytester, platform, "--scriptum-rollback=off")
    assert result.ret == 1, result.stdout.str()
    tests = {t["nodeid"].split("::")[-1]: t for t in bundle_of(pytester)["tests"]}
    q1 = tests["test_q1"]
    assert q1["outcome"] == "failed"
    assert q1["error"] == "regression: failed on the candidate (0 of 3 < 2), passed on baseline v3"
    assert len(q1["repeat"]["attempts"]) == 3 and len(q1["baseline"]["attempts"]) == 3
    assert q1["baseline"]["verdict"] == "3 of 3 passed >= 2"
    assert tests["test_q4"]["outcome"] == "passed"
    versions = [t.version for t in platform.threads()]
    assert (versions.count(4), versions.count(3)) == (6, 6)


def test_a_failure_on_both_sides_seen_before_is_pre_existing(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    write_suite(pytester)
    set_overlay(platform, delete=(KEY,))
    first = run(pytester, platform)
    assert first.ret == 20, first.stdout.str()
    before = bundle_of(pytester)
    assert before["baseline"]["pre_existing"] == 0  # no earlier bundle to compare with
    assert {t["baseline"]["pre_existing"] for t in before["tests"]} == {False}
    # The same outage again: the previous bundle at --scriptum-evidence says v3 failed them before.
    second = run(pytester, platform)
    assert second.ret == 20, second.stdout.str()
    second.stdout.fnmatch_lines(
        ["paired baseline: *; 5 pre-existing (the baseline failed them in the previous bundle)"]
    )
    after = bundle_of(pytester)
    assert after["baseline"]["pre_existing"] == 5
    assert {t["baseline"]["pre_existing"] for t in after["tests"]} == {True}
    assert platform.calls("RollbackScript") == 0
