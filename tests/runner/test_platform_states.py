"""Thread states and auth the documented API adds, through the installed plugin against a real
dev server: a failure the platform marks as its own is an error (never the candidate's failure),
a PAUSED thread (a handler waiting in ``context.ask``) is a status a test can expect, and the
organization name and the platform CLI's token variable reach the server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import ORG, TOKEN, Platform, outcomes, write_seed

from pytest_scriptum.devserver import DevServer

ORG_NAME = "desk-team"  # the organization's name, distinct from its id
SCRIPT = "desk"

# v1 is active (the rollback target of v2), v2 is the candidate.
HANDLER = """
def handler(event, context):
    with context.step("work"):
        if event.get("kind") == "ask":
            answer = context.ask("approve", prompt="Ship it?", type="text", options=["approve", "reject"])
            return {"answer": answer}
        return {"ok": True, "version": VERSION}
"""

SUITE = """
import pytest

pytestmark = pytest.mark.scriptum("desk")


@pytest.mark.smoke_input({"kind": "plain"})
@pytest.mark.smoke_expect({"ok": True})
def test_marker_run():
    pass


def test_runner_run(scriptum_runner):
    assert scriptum_runner.run({"kind": "plain"}).output == {"ok": True, "version": 2}
"""

ASK_SUITE = """
import pytest

pytestmark = pytest.mark.scriptum("desk")


@pytest.mark.smoke_input({"kind": "ask"})
@pytest.mark.smoke_expect(status="PAUSED")
def test_waits_for_approval(smoke_thread, scriptum_client):
    assert smoke_thread.status == "PAUSED" and smoke_thread.error_code == ""
    assert [(s.path, s.name) for s in smoke_thread.steps][:1] == [("1", "work")]
    # The thread waits durably; the test answers the ask and the thread finishes.
    scriptum_client.resume_thread(smoke_thread.thread_id, "approve")
    done = scriptum_client.watch_thread(smoke_thread.thread_id, timeout_s=30)
    assert done.status == "COMPLETED"
    result = scriptum_client.get_thread_result(smoke_thread.thread_id)
    assert result.output_data and b"approve" in result.output_data


@pytest.mark.smoke_input({"kind": "ask"})
def test_paused_is_not_completed():
    pass
"""


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    versions = {n: f"VERSION = {n}\n{HANDLER}" for n in (1, 2)}
    seed = write_seed(tmp_path / "seed", script=SCRIPT, versions=versions, active=1)
    server = DevServer(
        data_dir=tmp_path / "data", seed=seed, principals={TOKEN: ORG}, org_names={ORG: ORG_NAME}
    )
    server.start()
    monkeypatch.setenv("DODIL_TOKEN", TOKEN)
    plat = Platform.of(server, token=TOKEN, org=ORG, script=SCRIPT, version=2)
    yield plat
    plat.close()


def _bundle(pytester: pytest.Pytester) -> dict:  # type: ignore[type-arg]
    return json.loads((pytester.path / "bundle.json").read_text())


@pytest.mark.parametrize("code", ["PLATFORM_CAPACITY", "PLATFORM_RUNTIME_CRASH"])
def test_a_failure_the_platform_marks_as_its_own_is_an_error_never_a_failure(
    platform: Platform, pytester: pytest.Pytester, code: str
) -> None:
    platform.set_faults(platform_failure=code)
    pytester.makepyfile(test_desk=SUITE)
    result = pytester.runpytest(*platform.args("-rA", f"--scriptum-evidence={pytester.path / 'bundle.json'}"))
    found = outcomes(result)
    assert found == {"test_desk.py::test_marker_run": "error", "test_desk.py::test_runner_run": "error"}, (
        result.stdout.str()
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_marker_run*",
            f"*platform error (not a candidate failure): platform failure {code} in thread * of desk v2: *",
        ]
    )
    # Errors over the (zero) budget: nothing is decided about the candidate, nothing rolls back.
    result.stdout.fnmatch_lines(["verdict: INCONCLUSIVE - 2 errors > allowed 0: *"])
    assert result.ret == 20
    assert platform.active() == 1
    assert platform.calls("RollbackScript") == 0
    tests = {t["nodeid"]: t for t in _bundle(pytester)["tests"]}
    marker = tests["test_desk.py::test_marker_run"]
    assert (marker["outcome"], marker["status"], marker["error_code"]) == ("error", "FAILED", code)
    assert marker["thread_id"]


def test_a_paused_thread_is_a_status_a_test_can_expect(platform: Platform, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_desk_ask=ASK_SUITE)
    result = pytester.runpytest(*platform.args("-rA", "--scriptum-rollback=off"))
    assert outcomes(result) == {
        "test_desk_ask.py::test_waits_for_approval": "passed",
        "test_desk_ask.py::test_paused_is_not_completed": "failed",
    }, result.stdout.str()
    result.stdout.fnmatch_lines(["*status: expected COMPLETED, got PAUSED*"])
    assert result.ret == 1


def test_org_name_alone_authenticates_through_x_organization_name(
    platform: Platform, pytester: pytest.Pytester
) -> None:
    # No --scriptum-org: the server (which needs one of the two org headers) sees only the name.
    pytester.makepyfile(test_desk=SUITE)
    args = [a for a in platform.args("-rA") if not a.startswith("--scriptum-org=")]
    result = pytester.runpytest(*args, "-v", f"--scriptum-org-name={ORG_NAME}")  # -v: values with sources
    result.assert_outcomes(passed=2)
    assert result.ret == 0, result.stdout.str()
    assert f"org_name={ORG_NAME} (--scriptum-org-name)" in result.stdout.str()

    # The id is not the name: sent as x-organization-name it names no organization of the token.
    wrong = pytester.runpytest(*args, f"--scriptum-org-name={ORG}")
    assert wrong.ret == 20
    wrong.stdout.fnmatch_lines(
        [
            "preflight: FAILED platform reachable and credentials accepted: "
            "authorization failed: *PERMISSION_DENIED*"
        ]
    )


def test_token_falls_back_to_scriptum_token(
    platform: Platform, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_desk=SUITE)
    monkeypatch.delenv("DODIL_TOKEN")
    monkeypatch.setenv("SCRIPTUM_TOKEN", TOKEN)
    result = pytester.runpytest(*platform.args("-rA"))
    result.assert_outcomes(passed=2)
    assert result.ret == 0, result.stdout.str()
    assert "token=$SCRIPTUM_TOKEN (set)" in result.stdout.str()
    assert TOKEN not in result.stdout.str() + result.stderr.str()

    # DODIL_TOKEN comes first: a wrong one there is used (and refused), not skipped.
    monkeypatch.setenv("DODIL_TOKEN", "tok-wrong-0000000000")
    refused = pytester.runpytest(*platform.args("-rA"))
    assert refused.ret == 20
    refused.stdout.fnmatch_lines(["preflight: FAILED *authentication failed: *UNAUTHENTICATED*"])
