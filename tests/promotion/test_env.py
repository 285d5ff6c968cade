"""``--scriptum-env-file`` and ``--scriptum-overlay`` (DESIGN section 8): the tenant env imported and
the overlay changed before preflight; a rollback restores the overlay to its snapshot with
compare-and-set, keeps rotated secrets, and the verification re-run sees the restored overlay.
Values never appear in any output or file (keys and keyed fingerprints only)."""

from __future__ import annotations

import json

import pytest
from kit import Platform

from pytest_scriptum._proto import scriptum_pb2 as pb

from .conftest import MakePlatform, bundle

# Every version reports the MODEL its effective env resolved (the expectations match a subset).
REPORTS_MODEL = (
    "def handler(event, context):\n"
    "    return {'sum': event['a'] + event['b'], 'model': context.env.get('MODEL', '')}\n"
)
OVERLAY_BEFORE = {"MODEL": "gpt-4o", "LEGACY_MODEL": "legacy-1"}
OVERLAY_AFTER = {"MODEL": "gpt-4.1", "TEMPERATURE": "0.0"}
OLD_KEY = "sk-old-0123456789"
ROTATED_KEY = "sk-rotated-9876543210"
TENANT_BEFORE = {"DB_HOST": "db.kit.invalid", "OPENAI_API_KEY": OLD_KEY}
ENV_PROD = f"""# the production tenant env (no real secret)

export OPENAI_API_KEY="{ROTATED_KEY}"
DB_HOST = db.prod.invalid
"""
OVERLAY_YAML = """set:
  MODEL: gpt-4.1
  TEMPERATURE: "0.0"
delete:
  - LEGACY_MODEL
"""
PUBLISHED = 3


def overlay(platform: Platform) -> dict[str, str]:
    request = pb.GetScriptEnvRequest(name="calc")
    answer = platform.stub.GetScriptEnv(request, metadata=platform.metadata, timeout=10)
    return dict(answer.env)


def tenant(platform: Platform) -> dict[str, str]:
    answer = platform.stub.ListEnvVars(pb.ListEnvVarsRequest(), metadata=platform.metadata, timeout=10)
    return {var.key: var.value for var in answer.vars}


def models_of_version(platform: Platform, version: int) -> set[str]:
    """The MODEL every thread pinned to ``version`` resolved (read from the server)."""
    request = pb.ListThreadsRequest(script_name_filter="calc", page_size=200)
    threads = platform.stub.ListThreads(request, metadata=platform.metadata, timeout=10).threads
    return {
        json.loads(platform.result(t.thread_id).output_data)["model"]
        for t in threads
        if t.version == version and not t.draft
    }


@pytest.fixture
def files(suite: pytest.Pytester) -> pytest.Pytester:
    (suite.path / ".env.prod").write_text(ENV_PROD)
    (suite.path / "overlay.yaml").write_text(OVERLAY_YAML)
    return suite


def promoted(make_platform: MakePlatform) -> Platform:
    return make_platform(
        good=REPORTS_MODEL, draft=REPORTS_MODEL, overlay=OVERLAY_BEFORE, tenant_env=TENANT_BEFORE
    )


ONE_COMMAND = ("--scriptum-version=draft", "--scriptum-publish", "--scriptum-overlay=overlay.yaml",
               "--scriptum-env-file=.env.prod")


def assert_no_value_written(pytester: pytest.Pytester, output: str, *values: str) -> None:
    """No secret value in the output or any evidence file (the redactor and the fingerprints)."""
    texts = [output] + [p.read_text() for p in (pytester.path / "evidence").iterdir() if p.is_file()]
    for text in texts:
        for value in values or (ROTATED_KEY, OLD_KEY):
            assert value not in text


@pytest.mark.parametrize("workers", [0, 2])
def test_the_whole_runbook_in_one_command_passes(
    make_platform: MakePlatform, files: pytest.Pytester, workers: int
) -> None:
    platform = promoted(make_platform)
    result = files.runpytest_subprocess(*platform.args(), *ONE_COMMAND, "-n", str(workers))
    assert result.ret == 0, result.stdout.str()
    assert platform.active("calc") == PUBLISHED
    assert overlay(platform) == OVERLAY_AFTER
    assert tenant(platform) == {"DB_HOST": "db.prod.invalid", "OPENAI_API_KEY": ROTATED_KEY}
    assert models_of_version(platform, PUBLISHED) == {"gpt-4.1"}  # the second pass ran on the new overlay
    data = bundle(files)
    env = data["env_changes"]
    assert sorted(env["imported"]) == ["DB_HOST", "OPENAI_API_KEY"]
    assert sorted(env["overlay_set"]) == ["MODEL", "TEMPERATURE"]
    assert env["overlay_deleted"] == ["LEGACY_MODEL"]
    assert (env["restore"], env["restored"]) == ("kept", [])
    result.stdout.fnmatch_lines(
        ["env: imported DB_HOST, OPENAI_API_KEY; overlay set MODEL, TEMPERATURE, deleted LEGACY_MODEL"]
    )
    assert_no_value_written(files, result.stdout.str() + result.stderr.str())


def test_published_version_fails_rolls_back_restores_the_overlay_and_keeps_the_rotated_secret(
    make_platform: MakePlatform, files: pytest.Pytester
) -> None:
    platform = promoted(make_platform)
    platform.set_faults(fail_version=PUBLISHED)
    result = files.runpytest_subprocess(*platform.args(), *ONE_COMMAND)
    assert result.ret == 1, result.stdout.str()
    assert platform.active("calc") == 2
    assert overlay(platform) == OVERLAY_BEFORE
    assert tenant(platform)["OPENAI_API_KEY"] == ROTATED_KEY  # kept: the tenant env is never reverted
    # The verification re-run on v2 ran after the restore: it resolved the old MODEL.
    assert models_of_version(platform, 2) == {"gpt-4o"}
    data = bundle(files)
    assert data["rollback"]["status"] == "rolled_back_verified"
    assert data["rollback"]["verification"]["verdict"] == "pass"
    env = data["env_changes"]
    assert env["restore"] == "restored"
    assert env["restored"] == ["LEGACY_MODEL", "MODEL", "TEMPERATURE"]
    assert env["kept"] == ["DB_HOST", "OPENAI_API_KEY"]
    result.stdout.fnmatch_lines(["env overlay: restored - overlay of calc restored to its snapshot*"])
    assert_no_value_written(files, result.stdout.str() + result.stderr.str())


def test_a_secret_overlay_key_the_session_rotated_is_kept(
    make_platform: MakePlatform, files: pytest.Pytester
) -> None:
    platform = make_platform(draft="def handler(event, context):\n    return {'sum': -1}\n",
                             overlay={"MODEL": "gpt-4o", "SERVICE_TOKEN": "tok-old-123456"})
    (files.path / "overlay.yaml").write_text("set:\n  MODEL: gpt-4.1\n  SERVICE_TOKEN: tok-new-654321\n")
    result = files.runpytest_subprocess(
        *platform.args(), "--scriptum-version=draft", "--scriptum-overlay=overlay.yaml"
    )
    assert result.ret == 1
    # The draft failed, nothing was published: the overlay is restored but the rotated token kept.
    assert overlay(platform) == {"MODEL": "gpt-4o", "SERVICE_TOKEN": "tok-new-654321"}
    env = bundle(files)["env_changes"]
    assert (env["restore"], env["restored"], env["kept"]) == ("restored", ["MODEL"], ["SERVICE_TOKEN"])
    output = result.stdout.str() + result.stderr.str()
    assert_no_value_written(files, output, "tok-new-654321", "tok-old-123456")


ACTOR = '''
import os

import grpc

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc


def pytest_scriptum_gate_evaluated(verdict):
    """Another client changes the overlay while this session decides (before its restore)."""
    metadata = (
        ("authorization", "Bearer " + os.environ["DODIL_TOKEN"]),
        ("x-organization-id", os.environ["ACTOR_ORG"]),
    )
    request = pb.UpdateScriptEnvRequest(name="calc", set={"MODEL": "hotfix-model"})
    with grpc.insecure_channel(os.environ["ACTOR_GRPC"]) as channel:
        pb_grpc.ScriptumServiceStub(channel).UpdateScriptEnv(request, metadata=metadata, timeout=10)
'''


def test_an_overlay_changed_by_another_client_is_a_conflict_and_nothing_is_overwritten(
    make_platform: MakePlatform, files: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = promoted(make_platform)
    platform.set_faults(fail_version=PUBLISHED)
    files.makeconftest(ACTOR)
    monkeypatch.setenv("ACTOR_GRPC", platform.grpc)
    monkeypatch.setenv("ACTOR_ORG", platform.org)
    result = files.runpytest_subprocess(
        *platform.args(), "--scriptum-publish", "--scriptum-overlay=overlay.yaml"
    )
    assert result.ret == 21, result.stdout.str()
    # The other client's value stands; nothing of the snapshot was written back.
    assert overlay(platform) == {**OVERLAY_AFTER, "MODEL": "hotfix-model"}
    assert platform.calls("UpdateScriptEnv") == 2  # this session's apply and the other client's change
    data = bundle(files)
    assert data["rollback"]["status"] == "conflict"
    assert data["env_changes"]["restore"] == "conflict"
    assert data["rollback"]["verification"]["verdict"] == "inconclusive"
    result.stdout.fnmatch_lines(
        ["rollback: conflict - *the overlay of calc was changed by another actor*nothing was overwritten"]
    )


def test_both_checklists_in_order_in_the_bundle_the_summary_junit_and_allure(
    make_platform: MakePlatform, files: pytest.Pytester
) -> None:
    from kit.evidence import read_junit

    from pytest_scriptum.evidence.checklists import PROMOTION, ROLLBACK

    platform = promoted(make_platform)
    platform.set_faults(fail_version=PUBLISHED)
    result = files.runpytest_subprocess(
        *platform.args(), *ONE_COMMAND, "--scriptum-incident=INC-15",
        "--junitxml=evidence/junit.xml", "--alluredir=evidence/allure",
    )
    assert result.ret == 1, result.stdout.str()
    data = bundle(files)
    promotion, rollback = data["checklists"]["promotion"], data["checklists"]["rollback"]
    assert [(s["step"], s["name"]) for s in promotion] == list(enumerate(PROMOTION, start=1))
    assert [(s["step"], s["name"]) for s in rollback] == list(enumerate(ROLLBACK, start=1))
    assert [s["status"] for s in promotion] == ["ok", "ok", "ok", "failed", "ok"]
    assert [s["status"] for s in rollback] == ["ok", "ok", "ok", "ok"]
    assert "published the draft of calc as v3" in promotion[2]["detail"]
    assert "INC-15" in rollback[0]["detail"] and "v2 re-run: pass" in rollback[2]["detail"]
    # In the summary: every step, in the runbook's order, before the exit code.
    lines = [f"promotion checklist {s['step']}. {s['name']} {s['status']}" for s in promotion]
    lines += [f"rollback checklist {s['step']}. {s['name']} {s['status']}" for s in rollback]
    result.stdout.fnmatch_lines([*lines, "exit code: 1"], consecutive=True)
    suite = read_junit(files.path / "evidence" / "junit.xml").suite_properties
    assert suite["scriptum.publish.version"] == "3" and suite["scriptum.publish.previous_active"] == "2"
    assert suite["scriptum.env.restored"] == "LEGACY_MODEL,MODEL,TEMPERATURE"
    assert suite["scriptum.env.kept"] == "DB_HOST,OPENAI_API_KEY"
    assert suite["scriptum.checklist.promotion"] == "1:ok,2:ok,3:ok,4:failed,5:ok"
    assert suite["scriptum.checklist.rollback"] == "1:ok,2:ok,3:ok,4:ok"
    environment = (files.path / "evidence" / "allure" / "environment.properties").read_text()
    assert "scriptum.publish.version=3" in environment and "scriptum.env.restore=restored" in environment
    assert_no_value_written(files, result.stdout.str() + result.stderr.str())


def test_kill_9_between_apply_and_restore_is_reported_by_the_next_session(
    make_platform: MakePlatform, files: pytest.Pytester
) -> None:
    from kit.interrupts import InnerSession

    platform = promoted(make_platform)
    # The draft runs are held on the server: the overlay is applied, nothing is decided yet.
    platform.set_faults(latency_ms=120_000, methods=["TestScriptDraft"])
    args = platform.args("--scriptum-version=draft", "--scriptum-overlay=overlay.yaml")
    session = InnerSession(files, *args)
    platform.wait_for(lambda stats: stats.calls.get("TestScriptDraft", 0) >= 1, "a draft run arrived")
    session.kill()
    session.wait()
    assert overlay(platform) == OVERLAY_AFTER  # applied, never restored: the snapshot died with it
    (entry,) = (json.loads(p.read_text()) for p in (files.path / "evidence").glob("rollback-journal.calc.*"))
    assert (entry["kind"], entry["state"]) == ("overlay", "open")
    assert sorted(entry["overlay"]["before"]) == ["LEGACY_MODEL", "MODEL"]  # fingerprints, never values
    assert "gpt-4o" not in json.dumps(entry) and "legacy-1" not in json.dumps(entry)
    platform.reset()  # faults off, counters zeroed
    result = files.runpytest_subprocess(*platform.args("--scriptum-version=draft"))
    assert result.ret == 21, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*changed the overlay of calc (set MODEL, TEMPERATURE, deleted LEGACY_MODEL) and never closed*",
            "ACTION REQUIRED, run by hand: restore the overlay keys LEGACY_MODEL, MODEL, TEMPERATURE of calc "
            "from your configuration source (their earlier values were never stored), then remove *",
        ]
    )
    assert platform.calls("TestScriptDraft") == 0  # nothing ran before the human acts
    assert overlay(platform) == OVERLAY_AFTER
    reported = bundle(files)["journal"]  # the bundle validates against the schema
    assert (reported["kind"], reported["state"]) == ("overlay", "reported")
