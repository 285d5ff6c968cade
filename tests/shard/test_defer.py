"""``--scriptum-rollback=defer`` (issue 17, DESIGN section 8): a shard runs preflight and its tests,
writes a partial bundle (role ``shard``, every per-test record, the suite's node-id list, the
preflight's active version and rollback target) and decides nothing: no verdict, no rollback,
exit 0 unless the shard itself broke (then 20).

The shards of one candidate talk to ONE platform: a dev server process started by the test, seeded
like the example suite, read afterwards over its gRPC port.
"""

from __future__ import annotations

from typing import Any

import pytest
from kit import Platform
from kit.evidence import read_valid_bundle

pytestmark = pytest.mark.slow  # real sessions, seconds each: scheduled first (tests/conftest.py)


def shard(
    suite: pytest.Pytester, platform: Platform, index: int, *args: str, version: int = 4, xdist: bool = False
) -> tuple[pytest.RunResult, dict[str, Any]]:
    bundle = suite.path / "evidence" / f"shard-{index}.json"
    argv = platform.args(
        "-rA",
        f"--scriptum-shard={index}/3",
        "--scriptum-rollback=defer",
        f"--scriptum-evidence={bundle}",
        *args,
        version=version,
    )
    result = suite.runpytest_subprocess(*argv, "-n", "2") if xdist else suite.runpytest(*argv)
    return result, read_valid_bundle(bundle)


def test_shards_of_a_failing_candidate_record_everything_and_roll_nothing_back(
    suite: pytest.Pytester, platform: Platform
) -> None:
    assert platform.active() == 4
    before = len(platform.history())
    bundles = []
    for index in (1, 2, 3):
        result, bundle = shard(suite, platform, index, xdist=index == 2)
        # a failing smoke test in a shard is data for the merge, not the shard's failure
        assert result.ret == 0, result.stdout.str()
        result.stdout.fnmatch_lines(
            [f"verdict: INCONCLUSIVE - deferred: shard {index}/3 decides nothing alone*"]
        )
        assert "rolled back" not in result.stdout.str()
        assert bundle["role"] == "shard" and bundle["verdict"] == "inconclusive"
        assert bundle["rollback"] is None and bundle["exit_code"] == 0
        assert bundle["candidate_version"] == 4 and bundle["script"] == "invoice-parser"
        assert bundle["endpoint"] == platform.grpc
        # what the merge needs from the preflight: the active version and the rollback target
        assert bundle["preflight"]["active_version"] == 4 and bundle["preflight"]["rollback_target"] == 3
        bundles.append(bundle)
    failed = [t["nodeid"] for b in bundles for t in b["tests"] if t["outcome"] == "failed"]
    assert len(failed) == 3, failed  # the README's v4 regression cases, wherever they landed
    # nothing changed on the platform: still v4, no activation of any kind
    assert platform.active() == 4
    assert len(platform.history()) == before and not platform.rollbacks_in_history()


def test_a_shard_whose_preflight_failed_broke_exit_20(suite: pytest.Pytester, platform: Platform) -> None:
    result, bundle = shard(suite, platform, 1, version=99)
    assert result.ret == 20, result.stdout.str()
    result.stdout.fnmatch_lines(["verdict: INCONCLUSIVE - shard 1/3 broke: preflight failed: *"])
    assert bundle["role"] == "shard" and bundle["exit_code"] == 20 and bundle["rollback"] is None
    assert platform.active() == 4 and not platform.rollbacks_in_history()


def test_a_shard_with_a_collection_error_broke_exit_20(suite: pytest.Pytester, platform: Platform) -> None:
    (suite.path / "smoke" / "test_broken.py").write_text("import no_such_module\n")
    result, bundle = shard(suite, platform, 2, "--continue-on-collection-errors")
    assert result.ret == 20, result.stdout.str()
    result.stdout.fnmatch_lines(["verdict: INCONCLUSIVE - shard 2/3 broke: collection errors: *"])
    assert bundle["exit_code"] == 20 and bundle["rollback"] is None
    assert platform.active() == 4 and not platform.rollbacks_in_history()


def test_defer_without_a_shard_is_a_usage_error(suite: pytest.Pytester) -> None:
    result = suite.runpytest("-p", "no:cacheprovider", "--scriptum-version=4", "--scriptum-rollback=defer")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--scriptum-rollback=defer: *defer is for a shard of a sharded gate; set --scriptum-shard=I/N*"]
    )
