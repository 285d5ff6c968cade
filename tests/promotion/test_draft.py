"""``--scriptum-version=draft``: every smoke run is TestScriptDraft of the current draft; the gate
decides; nothing is published or rolled back (DESIGN section 8)."""

from __future__ import annotations

import json

import pytest
from kit.seeds.calc_regression import GOOD, REGRESSION

from .conftest import MakePlatform, bundle


@pytest.mark.parametrize("workers", [0, 2])
def test_passing_draft_exits_0_and_changes_nothing(
    make_platform: MakePlatform, suite: pytest.Pytester, workers: int
) -> None:
    platform = make_platform(draft=GOOD)
    result = suite.runpytest_subprocess(*platform.args(), "--scriptum-version=draft", "-n", str(workers))
    result.assert_outcomes(passed=4)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["verdict: PASS*", "candidate: calc draft at endpoint *"])
    assert platform.calls("TestScriptDraft") == 4
    assert platform.calls("CreateThread") == 0
    assert platform.calls("PublishScriptDraft") == platform.calls("RollbackScript") == 0
    assert platform.active("calc") == 2 and len(platform.versions("calc")) == 2
    data = bundle(suite)
    assert data["verdict"] == "pass" and data["candidate_version"] is None
    assert {t["version"] for t in data["tests"]} == {None}
    names = [item["name"] for item in data["preflight"]["items"]]
    assert "3. compiled draft exists" in names and "3. candidate version exists" not in names
    assert data["preflight"]["draft_sha"]
    publish = data["publish"]
    assert (publish["mode"], publish["status"], publish["version"], publish["previous_active"]) == (
        "draft", "not_requested", None, None,
    )
    assert publish["draft_sha"] == data["preflight"]["draft_sha"]


def test_failing_draft_exits_1_and_rolls_nothing_back(
    make_platform: MakePlatform, suite: pytest.Pytester
) -> None:
    platform = make_platform(draft=REGRESSION)
    result = suite.runpytest_subprocess(*platform.args(), "--scriptum-version=draft")
    result.assert_outcomes(passed=2, failed=2)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["verdict: FAIL*", "rollback: candidate_not_active - the candidate is the draft*"]
    )
    assert platform.calls("PublishScriptDraft") == platform.calls("RollbackScript") == 0
    assert platform.active("calc") == 2
    data = bundle(suite)
    assert (data["rollback"]["status"], data["exit_code"]) == ("candidate_not_active", 1)


def test_no_draft_fails_preflight(make_platform: MakePlatform, suite: pytest.Pytester) -> None:
    platform = make_platform(draft=None)
    result = suite.runpytest_subprocess(*platform.args(), "--scriptum-version=draft")
    assert result.ret == 20
    result.stdout.fnmatch_lines(["*3. compiled draft exists: calc has no draft*"])
    assert platform.calls("TestScriptDraft") == 0


def test_a_draft_run_reporting_a_published_version_is_drift() -> None:
    """The docs are silent on a draft thread's version; one that reports a published version
    without the draft mark ran something other than the draft (an error, never a verdict)."""
    from typing import Any, cast

    from pytest_scriptum.client import ScriptumClient
    from pytest_scriptum.client._records import RunRecord, Thread, ThreadOutput
    from pytest_scriptum.runner import PinnedRunner, VersionDriftError

    def answer(version: int, draft: bool) -> RunRecord:
        thread = Thread("thr_1", "COMPLETED", script_name="calc", version=version, draft=draft)
        return RunRecord(thread, ThreadOutput("thr_1", "COMPLETED", b"{}", 2, ()))

    class Client:
        def __init__(self, record: RunRecord) -> None:
            self.record, self.kwargs = record, {}

        def run_thread(self, name: str, version: int, input: Any, **kwargs: Any) -> RunRecord:
            self.kwargs = kwargs
            return self.record

    for record, drifted in ((answer(0, True), False), (answer(0, False), False), (answer(2, True), False),
                            (answer(2, False), True)):
        client = Client(record)
        runner = PinnedRunner(cast(ScriptumClient, client), version=0, draft=True, script="calc", timeout=5.0)
        if drifted:
            with pytest.raises(VersionDriftError, match="pinned to calc draft"):
                runner.run({})
        else:
            assert runner.run({}).thread_id == "thr_1"
        assert client.kwargs["draft"] is True


def test_concurrent_draft_runs_never_fail_inside_the_server(make_platform: MakePlatform) -> None:
    """Every TestScriptDraft compiles the draft; CPython 3.11 sometimes failed concurrent AST
    builds with a SystemError, answered as INTERNAL (seen once in ~200 concurrent calls)."""
    import grpc
    from kit import EXAMPLE_SUITE

    from pytest_scriptum._proto import scriptum_pb2 as pb

    # A handler of some size (the example's draft): small ones rarely showed it.
    handler = EXAMPLE_SUITE / "seed" / "scripts" / "invoice-parser" / "draft" / "handler.py"
    platform = make_platform(draft=handler.read_text())
    text = "Invoice: INV-1\nCurrency: EUR\nLine: A x1 1.00\nTotal: 1.00"

    def one(i: int) -> str | None:
        request = pb.TestScriptDraftRequest(name="calc", input_json=json.dumps({"text": text, "n": i}))
        try:
            platform.stub.TestScriptDraft(request, metadata=platform.metadata, timeout=30)
        except grpc.RpcError as exc:
            return f"{exc.code()}: {exc.details()}"
        return None

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(32) as pool:
        problems = [p for p in pool.map(one, range(400)) if p]
    assert problems == []
