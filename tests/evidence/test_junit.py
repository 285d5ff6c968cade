"""JUnit evidence: per-test scriptum.* properties and the suite properties, with and without xdist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kit.evidence import read_junit, read_valid_bundle

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.devserver import DevServer

THREAD_PROPERTIES = ("scriptum.thread_id", "scriptum.status", "scriptum.duration_ms")


def _check_failed_and_rolled_back(junit_path: Path) -> None:
    junit = read_junit(junit_path)
    # issue 11: the session's selection (the whole suite here), as the bundle's object in JSON
    selection = json.loads(junit.suite_properties.pop("scriptum.selection"))
    assert (selection["partial"], selection["selected"], selection["deselected"]) == (False, 3, 0)
    assert junit.suite_properties == {
        "scriptum.role": "candidate",
        "scriptum.verdict": "fail",
        "scriptum.candidate_version": "2",
        "scriptum.rollback.status": "rolled_back_verified",
        "scriptum.rollback.to": "1",
        "scriptum.incident": "INC-77",
    }
    assert set(junit.cases) == {"test_small_sum", "test_big_sum", "test_runner_only"}
    for name in ("test_small_sum", "test_big_sum"):
        props = junit.cases[name].properties
        assert props["scriptum.script"] == "calc" and props["scriptum.version"] == "2", props
        assert props["scriptum.status"] == "COMPLETED"
        assert len(props["scriptum.thread_id"]) >= 8
        assert float(props["scriptum.duration_ms"]) >= 0
    assert junit.cases["test_big_sum"].failed and not junit.cases["test_small_sum"].failed
    # A runner-only test has no marker-declared thread, but still says what it was pinned to.
    assert junit.cases["test_runner_only"].properties == {"scriptum.script": "calc", "scriptum.version": "2"}

    verification = read_junit(junit_path.with_name("junit.verification-v1.xml"))
    # the re-run names the candidate run's smoke tests by node id
    assert json.loads(verification.suite_properties.pop("scriptum.selection"))["selected"] == 3
    assert verification.suite_properties == {
        "scriptum.role": "verification",
        "scriptum.verdict": "pass",
        "scriptum.candidate_version": "2",
        "scriptum.verified_version": "1",
        "scriptum.rollback.to": "1",
        "scriptum.incident": "INC-77",
    }
    assert verification.cases["test_big_sum"].properties["scriptum.version"] == "1"
    assert not any(case.failed for case in verification.cases.values())


@pytest.mark.parametrize("xdist", [False, True], ids=["single", "xdist"])
def test_properties_after_a_failed_and_rolled_back_run(suite: pytest.Pytester, xdist: bool) -> None:
    junit = suite.path / "evidence" / "junit.xml"
    args = ["--scriptum-version=2", "--scriptum-incident=INC-77", f"--junitxml={junit}"]
    args += ["-p", "no:cacheprovider"]
    if xdist:
        result = suite.runpytest_subprocess("-n", "2", *args)
    else:
        result = suite.runpytest(*args)
    assert result.ret == 1, result.stdout.str()
    _check_failed_and_rolled_back(junit)
    bundle = read_valid_bundle(suite.path / "evidence" / "scriptum.json")
    assert bundle["rollback"]["status"] == "rolled_back_verified"
    result.stdout.fnmatch_lines([f"evidence junit: {junit}"])


def test_passing_gate_properties(suite: pytest.Pytester) -> None:
    junit = suite.path / "junit.xml"
    result = suite.runpytest("--scriptum-version=1", f"--junitxml={junit}", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    parsed = read_junit(junit)
    assert parsed.suite_properties["scriptum.verdict"] == "pass"
    assert parsed.suite_properties["scriptum.rollback.status"] == "not_needed"
    # v1 was the first version ever activated: there is no known-good version before it.
    assert parsed.suite_properties["scriptum.rollback.to"] == ""
    assert parsed.suite_properties["scriptum.incident"] == ""


def test_suite_properties_are_in_the_file_junitxml_writes_last(suite: pytest.Pytester) -> None:
    """Ordering: the controller's tryfirst sessionfinish adds them before LogXML writes the file."""
    suite.makeconftest(
        """
        import pytest
        from _pytest.junitxml import xml_key

        @pytest.hookimpl(trylast=True)
        def pytest_sessionfinish(session):
            # junitxml's own sessionfinish (no ordering flag) has written the file by now
            xml = session.config.stash[xml_key]
            with open(xml.logfile, encoding="utf-8") as f:
                text = f.read()
            with open("seen-at-trylast.txt", "w") as out:
                out.write(str("scriptum.verdict" in text))
        """
    )
    result = suite.runpytest("--scriptum-version=2", "--junitxml=j.xml", "-p", "no:cacheprovider")
    assert result.ret == 1, result.stdout.str()
    assert (suite.path / "seen-at-trylast.txt").read_text() == "True"


def test_a_test_without_thread_keeps_script_and_version(
    pytester: pytest.Pytester, seed_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every CreateThread fails on the platform: the tests error before a thread exists (inconclusive)."""
    faults = pb.Faults(error_rate=1.0, error_status="UNAVAILABLE", methods=["CreateThread"])
    server = DevServer(data_dir=tmp_path / "data", seed=seed_dir, principals={"tok-junit-7c1d0e": "org-j"},
                       faults=faults)
    addresses = server.start()
    try:
        pytester.makepyfile(test_calc=_ONE_SMOKE_TEST)
        monkeypatch.setenv("DODIL_TOKEN", "tok-junit-7c1d0e")
        result = pytester.runpytest(
            f"--scriptum-endpoint={addresses.grpc}", "--scriptum-org=org-j", "--scriptum-script=calc",
            "--scriptum-version=2", "--scriptum-retries=0", "--junitxml=j.xml",
            f"--scriptum-evidence={pytester.path / 'b.json'}", "-p", "no:cacheprovider",
        )
    finally:
        server.stop()
    assert result.ret == 20, result.stdout.str()
    case = read_junit(pytester.path / "j.xml").cases["test_small_sum"]
    assert case.failed
    assert case.properties == {"scriptum.script": "calc", "scriptum.version": "2"}
    assert read_junit(pytester.path / "j.xml").suite_properties["scriptum.rollback.status"] == "none"
    bundle = read_valid_bundle(pytester.path / "b.json")
    assert bundle["verdict"] == "inconclusive" and bundle["rollback"] is None
    assert bundle["tests"][0]["outcome"] == "error" and bundle["tests"][0]["thread_id"] is None


_ONE_SMOKE_TEST = """
import pytest

@pytest.mark.smoke_input({"a": 2, "b": 3})
@pytest.mark.smoke_expect({"sum": 5})
def test_small_sum(smoke_thread):
    pass
"""
