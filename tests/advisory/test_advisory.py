"""Advisory tests (DESIGN section 8, issue 16): ``scriptum(advisory=True)`` runs and is reported
("would have failed") but is never part of the verdict or of min-tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from kit.evidence import read_junit, read_valid_bundle
from kit.platform import Platform
from kit.seeds.flaky import case_input


def write_suite(
    pytester: pytest.Pytester, counters: Path, cases: dict[str, tuple[str, tuple[int, ...]]]
) -> None:
    """One test per case: ``{name: (scriptum marker arguments, attempts that fail)}``."""
    pytester.makeini("[pytest]\nscriptum_evidence = evidence/bundle.json\n")
    tests = [
        f"""
@pytest.mark.scriptum({marker})
@pytest.mark.smoke_input({case_input(counters, name, fail_on=fail_on)})
@pytest.mark.smoke_expect({{"ok": True}})
def test_{name}():
    pass
"""
        for name, (marker, fail_on) in cases.items()
    ]
    pytester.makepyfile(test_suite="import pytest\n" + "".join(tests))


def run(pytester: pytest.Pytester, platform: Platform, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*platform.args(version=2), "--junitxml=evidence/junit.xml", *args)


def bundle_of(pytester: pytest.Pytester) -> dict:
    return read_valid_bundle(pytester.path / "evidence" / "bundle.json")


@pytest.mark.parametrize("workers", ["0", "2"])
def test_an_advisory_failure_beside_passing_required_tests_passes_the_gate(
    pytester: pytest.Pytester, platform: Platform, counters: Path, workers: str
) -> None:
    cases = {"one": ("", ()), "two": ("", ()), "hint": ("advisory=True", (1,))}
    write_suite(pytester, counters, cases)
    result = run(pytester, platform, "-n", workers)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "verdict: PASS - passed 2 of 2*",
            "advisory: test_suite.py::test_hint would have failed (not gate evidence): *",
            "advisory tests: 1, 1 would have failed; not gate evidence",
        ]
    )
    bundle = bundle_of(pytester)
    assert (bundle["gate"]["passed"], bundle["gate"]["failed"], bundle["gate"]["errors"]) == (2, 0, 0)
    hint = next(t for t in bundle["tests"] if t["nodeid"].endswith("test_hint"))
    assert (hint["advisory"], hint["outcome"]) == (True, "failed")
    assert "/ok" in hint["error"] and hint["thread_id"] is not None  # it really ran
    required = [t for t in bundle["tests"] if not t["advisory"]]
    assert {t["outcome"] for t in required} == {"passed"} and len(required) == 2
    junit = read_junit(pytester.path / "evidence" / "junit.xml")
    assert junit.cases["test_hint"].properties["scriptum.advisory"] == "true"
    assert junit.cases["test_hint"].failed and not junit.cases["test_one"].failed
    assert platform.active() == 2 and platform.calls("RollbackScript") == 0


def test_the_same_failure_when_required_fails_the_gate(
    pytester: pytest.Pytester, platform: Platform, counters: Path
) -> None:
    # The control: without advisory=True, the same failing case rolls v2 back.
    write_suite(pytester, counters, {"one": ("", ()), "two": ("", ()), "hint": ("", (1,))})
    result = run(pytester, platform)
    assert result.ret == 1, result.stdout.str()
    assert platform.active() == 1 and platform.calls("RollbackScript") == 1


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_suite_of_only_advisory_tests_is_inconclusive(
    pytester: pytest.Pytester, platform: Platform, counters: Path, workers: str
) -> None:
    write_suite(pytester, counters, {"a": ("advisory=True", ()), "b": ("advisory=True", (1,))})
    result = run(pytester, platform, "-n", workers)
    assert result.ret == 20, result.stdout.str()
    result.stdout.fnmatch_lines(["verdict: INCONCLUSIVE - only 0 decided smoke tests < min 1*"])
    assert bundle_of(pytester)["verdict"] == "inconclusive"
    assert platform.calls("RollbackScript") == 0 and platform.active() == 2


def test_advisory_tests_do_not_count_for_min_tests(
    pytester: pytest.Pytester, platform: Platform, counters: Path
) -> None:
    write_suite(pytester, counters, {"one": ("", ()), "extra": ("advisory=True", ())})
    result = run(pytester, platform, "--scriptum-min-tests=2")
    assert result.ret == 20, result.stdout.str()
    result.stdout.fnmatch_lines(["verdict: INCONCLUSIVE - only 1 decided smoke test < min 2*"])
