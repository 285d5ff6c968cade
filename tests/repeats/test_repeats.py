"""Repeats (DESIGN section 8, issue 16): ``scriptum(repeat=N, min_pass=K)`` runs N independent
threads per case and passes it with at least K passing decided attempts. The handler fails exactly
the attempts each case's input lists, so every count below is known before the session runs; the
server is read back for the threads it really ran."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kit.evidence import read_allure, read_junit, read_valid_bundle
from kit.platform import Platform
from kit.seeds.flaky import case_input


def write_suite(
    pytester: pytest.Pytester, counters: Path, cases: dict[str, dict[str, Any]], *, marker: str
) -> None:
    """One marker-declared test per case, expecting ``{"ok": true}``; ``marker`` is the module's
    ``scriptum(...)`` arguments."""
    pytester.makeini("[pytest]\nscriptum_evidence = evidence/bundle.json\n")
    tests = [
        f"""
@pytest.mark.smoke_input({case_input(counters, name, **spec)})
@pytest.mark.smoke_expect({{"ok": True}})
def test_{name}():
    pass
"""
        for name, spec in cases.items()
    ]
    source = f"import pytest\n\npytestmark = pytest.mark.scriptum({marker})\n" + "".join(tests)
    pytester.makepyfile(test_flaky=source)


def run(pytester: pytest.Pytester, platform: Platform, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        *platform.args(version=2), "--junitxml=evidence/junit.xml", "-p", "no:randomly", *args
    )


def bundle_tests(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    bundle = read_valid_bundle(pytester.path / "evidence" / "bundle.json")
    return {t["nodeid"].split("::")[-1]: t for t in bundle["tests"]}


@pytest.mark.parametrize("workers", ["0", "2"])
def test_one_failure_in_five_passes_with_min_pass_4(
    pytester: pytest.Pytester, platform: Platform, counters: Path, workers: str
) -> None:
    cases = {"one_bad": {"fail_on": (3,)}, "all_good": {}}
    write_suite(pytester, counters, cases, marker="repeat=5, min_pass=4")
    result = run(pytester, platform, "-n", workers)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["verdict: PASS - passed 2 of 2*", "repeated cases: 2, pass^N *in 1 of 2"])
    tests = bundle_tests(pytester)
    one_bad, all_good = tests["test_one_bad"]["repeat"], tests["test_all_good"]["repeat"]
    assert (one_bad["passed"], one_bad["failed"], one_bad["errors"], one_bad["pass_hat_n"]) == (4, 1, 0, 0)
    assert one_bad["verdict"] == "4 of 5 passed >= 4"
    assert (all_good["passed"], all_good["pass_hat_n"]) == (5, 1)
    failed = [a for a in one_bad["attempts"] if a["outcome"] == "failed"]
    assert len(failed) == 1 and "/ok" in failed[0]["error"]
    # The server ran 5 distinct threads per case, all on the candidate, each its own request.
    threads = {t.thread_id: t for t in platform.threads()}
    for record in (one_bad, all_good):
        ids = [a["thread_id"] for a in record["attempts"]]
        assert len(set(ids)) == 5 and set(ids) <= set(threads)
        assert {threads[i].version for i in ids} == {2}
        assert len({threads[i].metadata["scriptum.request_id"] for i in ids}) == 5
    assert len(threads) == 10
    assert platform.active() == 2 and platform.calls("RollbackScript") == 0
    junit = read_junit(pytester.path / "evidence" / "junit.xml").cases["test_one_bad"].properties
    assert (junit["scriptum.repeat"], junit["scriptum.repeat.min_pass"]) == ("5", "4")
    assert (junit["scriptum.repeat.passed"], junit["scriptum.repeat.pass_hat_n"]) == ("4", "0")
    assert len(junit["scriptum.repeat.attempts"].split(",")) == 5


@pytest.mark.parametrize("workers", ["0", "2"])
def test_two_failures_in_five_fail_the_case_and_roll_back(
    pytester: pytest.Pytester, platform: Platform, counters: Path, workers: str
) -> None:
    cases = {"two_bad": {"fail_on": (2, 4)}, "all_good": {}}
    write_suite(pytester, counters, cases, marker="repeat=5, min_pass=4")
    result = run(pytester, platform, "-n", workers)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*repeated case failed: 3 of 5 < 4*", "verdict: FAIL - failed 1 of 2 > allowed 0*"]
    )
    result.stdout.fnmatch_lines(["repeat: *test_two_bad failed: 3 of 5 < 4"])
    tests = bundle_tests(pytester)
    assert tests["test_two_bad"]["outcome"] == "failed" and tests["test_all_good"]["outcome"] == "passed"
    assert tests["test_two_bad"]["repeat"]["verdict"] == "3 of 5 < 4"
    # Rolled back to v1 and verified there (the re-run repeats too: attempts 6-10 all pass).
    assert platform.active() == 1 and platform.calls("RollbackScript") == 1
    bundle = read_valid_bundle(pytester.path / "evidence" / "bundle.json")
    assert bundle["rollback"]["status"] == "rolled_back_verified"
    assert len([t for t in platform.threads() if t.version == 1]) == 10


def test_a_crash_on_one_attempt_is_an_error_never_a_failure(
    pytester: pytest.Pytester, platform: Platform, counters: Path
) -> None:
    # "open": 3 passed, 1 failed, 1 crashed: 4 passes would need the crashed one, so undecided.
    # "crash_once": 4 passed, 1 crashed: passes, and the crashed attempt is charged to the budget.
    cases = {"open": {"fail_on": (2,), "crash_on": (4,)}, "crash_once": {"crash_on": (1,)}}
    write_suite(pytester, counters, cases, marker="repeat=5, min_pass=4")
    result = run(pytester, platform)
    assert result.ret == 20, result.stdout.str()
    tests = bundle_tests(pytester)
    assert tests["test_open"]["outcome"] == "error"
    assert tests["test_open"]["repeat"]["verdict"].startswith("undecided: 3 of 5 passed, 4 needed")
    crashed = [a for a in tests["test_open"]["repeat"]["attempts"] if a["outcome"] == "error"]
    assert len(crashed) == 1 and "PLATFORM_RUNTIME_CRASH" in crashed[0]["error"]
    assert tests["test_crash_once"]["outcome"] == "passed"
    assert tests["test_crash_once"]["repeat"]["errors"] == 1
    bundle = read_valid_bundle(pytester.path / "evidence" / "bundle.json")
    assert bundle["verdict"] == "inconclusive" and bundle["gate"]["errors"] == 2
    assert platform.active() == 2 and platform.calls("RollbackScript") == 0


def test_the_errored_attempt_is_within_an_explicit_budget(
    pytester: pytest.Pytester, platform: Platform, counters: Path
) -> None:
    write_suite(pytester, counters, {"crash_once": {"crash_on": (1,)}}, marker="repeat=5, min_pass=4")
    result = run(pytester, platform, "--scriptum-max-errors=1")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["verdict: PASS - passed 1 of 1*1 error within allowed 1*"])


def test_the_body_is_judged_against_every_attempt(
    pytester: pytest.Pytester, platform: Platform, counters: Path
) -> None:
    pytester.makeini("[pytest]\nscriptum_evidence = evidence/bundle.json\n")
    pytester.makepyfile(
        test_body=f"""
import pytest

@pytest.mark.scriptum(repeat=4, min_pass=3)
@pytest.mark.smoke_input({case_input(counters, "body")})
def test_body(smoke_thread):
    assert smoke_thread.output["attempt"] != 2, "attempt 2 is the body's failure"
"""
    )
    result = run(pytester, platform)
    assert result.ret == 0, result.stdout.str()
    record = bundle_tests(pytester)["test_body"]["repeat"]
    outcomes = Counter(a["outcome"] for a in record["attempts"])
    assert outcomes == {"passed": 3, "failed": 1}
    failed = next(a for a in record["attempts"] if a["outcome"] == "failed")
    assert "attempt 2 is the body's failure" in failed["error"]


def test_the_session_option_repeats_every_case(
    pytester: pytest.Pytester, platform: Platform, counters: Path
) -> None:
    write_suite(pytester, counters, {"a": {"fail_on": (1,)}, "b": {}}, marker="")
    result = run(pytester, platform, "--scriptum-repeat=3")
    # min_pass defaults to N: one failed attempt of three fails the case.
    assert result.ret == 1, result.stdout.str()
    tests = bundle_tests(pytester)
    assert tests["test_a"]["repeat"]["verdict"] == "2 of 3 < 3"
    assert tests["test_b"]["repeat"]["pass_hat_n"] == 1
    assert len([t for t in platform.threads() if t.version == 2]) == 6


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("repeat=0", "repeat must be from 1 to 20 (the cap on attempts per case), got 0"),
        ("repeat=21", "repeat must be from 1 to 20 (the cap on attempts per case), got 21"),
        ("repeat='5'", "repeat must be an integer from 1 to 20, got '5'"),
        ("repeat=5, min_pass=6", "min_pass must be at most repeat (5), got 6"),
        ("repeat=3, min_pass=0", "min_pass must be from 1 to 20*got 0"),
        ("advisory=True, critical=True", "advisory=True and critical=True exclude each other"),
    ],
)
def test_bad_repeat_arguments_are_collection_errors_naming_file_and_line(
    pytester: pytest.Pytester, platform: Platform, counters: Path, marker: str, message: str
) -> None:
    write_suite(pytester, counters, {"a": {}}, marker=marker)
    result = run(pytester, platform)
    assert result.ret == 2, result.stdout.str()
    result.stdout.fnmatch_lines([f"test_flaky.py:5: test_a*{message}*"])
    assert platform.calls("CreateThread") == 0


def test_min_pass_over_the_session_repeat_is_a_usage_error(
    pytester: pytest.Pytester, platform: Platform, counters: Path
) -> None:
    write_suite(pytester, counters, {"a": {}}, marker="min_pass=3")
    result = run(pytester, platform, "--scriptum-repeat=2")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*scriptum(min_pass=3) needs at least that many attempts*--scriptum-repeat is 2*"]
    )


@pytest.mark.parametrize("value", ["0", "21", "x"])
def test_a_bad_session_repeat_is_a_usage_error(
    pytester: pytest.Pytester, platform: Platform, counters: Path, value: str
) -> None:
    write_suite(pytester, counters, {"a": {}}, marker="")
    result = run(pytester, platform, f"--scriptum-repeat={value}")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--scriptum-repeat*"])


def test_allure_shows_one_test_with_a_step_per_attempt(
    pytester: pytest.Pytester, platform: Platform, counters: Path
) -> None:
    write_suite(pytester, counters, {"one_bad": {"fail_on": (2,)}}, marker="repeat=5, min_pass=4")
    result = run(pytester, platform, "--alluredir=allure")
    assert result.ret == 0, result.stdout.str()
    found = read_allure(pytester.path / "allure").named("test_one_bad")
    assert len(found) == 1  # one test, not five
    steps = [s for s in found[0]["steps"] if s["name"].startswith(("attempt ", "repeat: "))]
    assert [s["name"].split(":")[0] for s in steps] == [f"attempt {i} of 5" for i in range(1, 6)] + ["repeat"]
    assert sorted(s["status"] for s in steps[:5]) == ["failed", "passed", "passed", "passed", "passed"]
    assert steps[-1]["name"] == "repeat: 4 of 5 passed >= 4 (min_pass 4, pass^5 = 0)"
    assert steps[-1]["status"] == "passed"
