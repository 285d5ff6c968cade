"""``--scriptum-publish`` (alone, and after the draft's gate with ``--scriptum-version=draft``):
the version active before is journalled, the draft published, every run pinned to the version it
creates, and a failed gate rolls back to exactly the version active before (DESIGN section 8)."""

from __future__ import annotations

import json
import signal

import pytest
from kit.interrupts import InnerSession
from kit.seeds.calc_regression import GOOD, REGRESSION

from .conftest import MakePlatform, bundle

PUBLISHED = 3  # calc has v1 and v2 (active): the draft becomes v3


def journals(pytester: pytest.Pytester) -> list[dict]:
    found = (pytester.path / "evidence").glob("rollback-journal.calc.*.json")
    return [json.loads(path.read_text()) for path in found]


def test_publish_alone_pins_every_run_to_the_published_version(
    make_platform: MakePlatform, suite: pytest.Pytester
) -> None:
    platform = make_platform(draft=GOOD)
    result = suite.runpytest_subprocess(*platform.args(), "--scriptum-publish")
    result.assert_outcomes(passed=4)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "verdict: PASS*",
            f"candidate: calc v{PUBLISHED} at endpoint *",
            "rollback target: v2 (history)",
            f"publish: published - published the draft of calc as v{PUBLISHED} (v2 was active)",
        ]
    )
    assert platform.active("calc") == PUBLISHED
    assert platform.calls("PublishScriptDraft") == 1 and platform.calls("TestScriptDraft") == 0
    assert platform.calls("CreateThread") == 4
    data = bundle(suite)
    assert data["candidate_version"] == PUBLISHED
    assert {t["version"] for t in data["tests"]} == {PUBLISHED}
    publish = data["publish"]
    assert (publish["mode"], publish["status"], publish["version"], publish["previous_active"]) == (
        "publish", "published", PUBLISHED, 2,
    )
    (entry,) = journals(suite)
    assert (entry["kind"], entry["from_version"], entry["to_version"]) == ("publish", 2, PUBLISHED)
    assert (entry["state"], entry["status"]) == ("closed", "published")


def test_publish_alone_failing_rolls_back_to_the_version_active_before(
    make_platform: MakePlatform, suite: pytest.Pytester
) -> None:
    platform = make_platform(draft=REGRESSION)
    result = suite.runpytest_subprocess(*platform.args(), "--scriptum-publish")
    result.assert_outcomes(passed=2, failed=2)
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"rollback: rolled_back_verified - rolled back calc v{PUBLISHED} -> v2*"])
    assert platform.active("calc") == 2
    data = bundle(suite)
    assert (data["rollback"]["from_version"], data["rollback"]["to_version"]) == (PUBLISHED, 2)
    assert data["rollback"]["verification"]["verdict"] == "pass"


@pytest.mark.parametrize("workers", [0, 2])
def test_draft_pass_published_second_pass_pass_exits_0(
    make_platform: MakePlatform, suite: pytest.Pytester, workers: int
) -> None:
    platform = make_platform(draft=GOOD)
    result = suite.runpytest_subprocess(
        *platform.args(), "--scriptum-version=draft", "--scriptum-publish", "-n", str(workers)
    )
    result.assert_outcomes(passed=4)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [f"verdict: PASS - the draft passed; the published v{PUBLISHED} passed its pinned second pass*"]
    )
    assert platform.active("calc") == PUBLISHED
    assert platform.calls("TestScriptDraft") == 4  # the draft's gate
    assert platform.calls("CreateThread") == 4  # the second pass, pinned to the published version
    assert platform.calls("PublishScriptDraft") == 1 and platform.calls("RollbackScript") == 0
    data = bundle(suite)
    publish = data["publish"]
    assert (publish["mode"], publish["status"], publish["version"], publish["previous_active"]) == (
        "draft+publish", "published", PUBLISHED, 2,
    )
    second = publish["second_pass"]
    assert (second["verdict"], second["passed"], second["failed"]) == ("pass", 4, 0)
    child = json.loads(open(second["bundle"]).read())
    assert child["candidate_version"] == PUBLISHED and {t["version"] for t in child["tests"]} == {PUBLISHED}
    assert data["rollback"]["status"] == "not_needed"


def test_draft_fail_publishes_nothing(make_platform: MakePlatform, suite: pytest.Pytester) -> None:
    platform = make_platform(draft=REGRESSION)
    result = suite.runpytest_subprocess(*platform.args(), "--scriptum-version=draft", "--scriptum-publish")
    result.assert_outcomes(passed=2, failed=2)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["publish: not_published - the draft's gate ended fail: nothing was published"]
    )
    assert platform.calls("PublishScriptDraft") == platform.calls("RollbackScript") == 0
    assert platform.active("calc") == 2 and len(platform.versions("calc")) == 2
    assert bundle(suite)["publish"]["status"] == "not_published"
    assert journals(suite) == []


def test_draft_pass_published_version_fails_rolls_back_and_verifies(
    make_platform: MakePlatform, suite: pytest.Pytester
) -> None:
    platform = make_platform(draft=GOOD)
    platform.set_faults(fail_version=PUBLISHED)  # pinned runs of v3 fail; draft tests never
    result = suite.runpytest_subprocess(*platform.args(), "--scriptum-version=draft", "--scriptum-publish")
    result.assert_outcomes(passed=4)  # the draft's own tests
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            f"verdict: FAIL - the draft passed; the published v{PUBLISHED} failed its pinned second pass*",
            f"rollback: rolled_back_verified - rolled back calc v{PUBLISHED} -> v2*",
        ]
    )
    assert platform.active("calc") == 2
    data = bundle(suite)
    assert data["publish"]["second_pass"]["verdict"] == "fail"
    rollback = data["rollback"]
    assert (rollback["status"], rollback["from_version"], rollback["to_version"]) == (
        "rolled_back_verified", PUBLISHED, 2,
    )
    assert rollback["verification"]["verdict"] == "pass"


def test_publish_with_a_numbered_version_is_a_usage_error(
    make_platform: MakePlatform, suite: pytest.Pytester
) -> None:
    platform = make_platform()
    result = suite.runpytest_subprocess(*platform.args(), "--scriptum-version=2", "--scriptum-publish")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --scriptum-publish publishes the draft*--scriptum-version=2 names a version already*"]
    )
    assert platform.calls("PublishScriptDraft") == 0


def test_sigterm_between_publish_and_gate_names_the_published_version_and_the_command(
    make_platform: MakePlatform, suite: pytest.Pytester
) -> None:
    platform = make_platform(draft=GOOD)
    # Pinned runs are held on the server: the publish happened, no run settled, the gate is open.
    platform.set_faults(latency_ms=120_000, methods=["CreateThread"])
    session = InnerSession(suite, *platform.args("--scriptum-publish", "--scriptum-retries=0"))
    platform.wait_for(lambda stats: stats.calls.get("CreateThread", 0) >= 1, "a pinned run arrived")
    assert platform.calls("PublishScriptDraft") == 1
    session.signal(signal.SIGTERM)
    code, out = session.wait()
    assert code == 21, out
    message = (
        f"calc v{PUBLISHED} was published by this session and is ACTIVE, UNGATED (the session was "
        "interrupted by SIGTERM); roll it back: dodil scriptum version rollback calc --to 2"
    )
    assert f"ACTION REQUIRED: {message}" in out
    assert platform.active("calc") == PUBLISHED
    data = bundle(suite)
    assert data["exit_code"] == 21
    assert (data["publish"]["status"], data["publish"]["version"]) == ("published_ungated", PUBLISHED)
    assert data["publish"]["message"] == message
