"""``--scriptum-shard=I/N`` (issue 17, DESIGN section 8 "Sharded CI gate"): a stable split of the
selected smoke tests, recorded in each shard's bundle with the whole suite's node-id list.

Every shard is a real inner pytest session of the example suite against its own embedded server
(the split and its record need no shared platform).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from kit import copy_example_suite, outcomes
from kit.evidence import read_valid_bundle

pytestmark = pytest.mark.slow  # real sessions, seconds each: scheduled first (tests/conftest.py)

PLAIN = "smoke/test_plain.py::test_plain"
# A test that is not a smoke test (no pinned run, no smoke fixture): it runs in shard 1 only.
PLAIN_TEST = """
def test_plain():
    assert True
"""
NO_CACHE = ("-p", "no:cacheprovider", "-rA", "--scriptum-version=5")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    copy_example_suite(pytester)
    (pytester.path / "smoke" / "test_plain.py").write_text(PLAIN_TEST)
    return pytester


def run_shard(suite: pytest.Pytester, shard: str | None, name: str, *, xdist: bool = False) -> dict[str, Any]:
    """One session (``shard`` None: taken from the environment), its bundle read and validated."""
    bundle = suite.path / "evidence" / f"{name}.json"
    args = [*NO_CACHE, f"--scriptum-evidence={bundle}"] + ([f"--scriptum-shard={shard}"] if shard else [])
    result = suite.runpytest_subprocess(*args, "-n", "2") if xdist else suite.runpytest(*args)
    assert result.ret == 0, result.stdout.str()
    return read_valid_bundle(bundle)


def test_three_shards_cover_the_suite_exactly_once(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    single = run_shard(suite, None, "all")
    assert single["shard"] is None and single["suite_nodeids"] is None
    everything = sorted(test["nodeid"] for test in single["tests"])

    first = run_shard(suite, "1/3", "one")
    second = run_shard(suite, "2/3", "two", xdist=True)
    monkeypatch.setenv("SCRIPTUM_SHARD", "3/3")  # the environment variable, as a CI matrix sets it
    third = run_shard(suite, None, "three")

    shards = [first, second, third]
    ran = [sorted(test["nodeid"] for test in bundle["tests"]) for bundle in shards]
    for i, (bundle, nodeids) in enumerate(zip(shards, ran, strict=True), start=1):
        assert bundle["shard"]["index"] == i and bundle["shard"]["total"] == 3
        # the whole suite's list, the same in every shard, is the single session's selection
        assert bundle["suite_nodeids"] == everything
        assert bundle["shard"]["nodeids_sha"] == hashlib.sha256("\n".join(nodeids).encode()).hexdigest()
        assert bundle["shard"]["inifile"] == "pytest.ini"
        assert bundle["verdict"] == "pass"
        assert bundle["selection"]["partial"] is True  # a shard alone is never the whole suite
    # exactly once: disjoint and complete, and balanced (sizes differ by at most one)
    assert sorted(nodeid for nodeids in ran for nodeid in nodeids) == everything
    sizes = [len(nodeids) for nodeids in ran]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) > 0, sizes


def test_the_split_is_the_same_with_and_without_xdist(suite: pytest.Pytester) -> None:
    alone = run_shard(suite, "2/4", "alone")
    workers = run_shard(suite, "2/4", "workers", xdist=True)
    assert alone["shard"] == workers["shard"]
    assert alone["suite_nodeids"] == workers["suite_nodeids"]
    assert sorted(t["nodeid"] for t in alone["tests"]) == sorted(t["nodeid"] for t in workers["tests"])


def test_non_smoke_tests_run_in_shard_one_only(suite: pytest.Pytester) -> None:
    files = ("smoke/test_plain.py", "smoke/test_invoice_runner.py")
    one = suite.runpytest(*NO_CACHE, *files, "--scriptum-shard=1/2")
    two = suite.runpytest(*NO_CACHE, *files, "--scriptum-shard=2/2")
    assert one.ret == 0 and two.ret == 0, one.stdout.str() + two.stdout.str()
    first, second = outcomes(one), outcomes(two)
    assert first[PLAIN] == "passed" and PLAIN not in second
    # the five smoke tests of the file are split between the two: each ran in exactly one
    smoke = (set(first) | set(second)) - {PLAIN}
    assert len(smoke) == 5 and not set(first) & set(second), (first, second)


@pytest.mark.parametrize("value", ["0/3", "4/3", "1/1001", "1/0", "a/b", "3", "1/2/3", "-1/3", "1/\n2"])
def test_a_bad_shard_is_a_usage_error(suite: pytest.Pytester, value: str) -> None:
    result = suite.runpytest(*NO_CACHE, f"--scriptum-shard={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*--scriptum-shard=*: invalid value for --scriptum-shard / ini scriptum_shard / env SCRIPTUM_SHARD:*"
    ])
    if "\n" not in value:
        result.stderr.fnmatch_lines(["*expected I/N with 1 <= I <= N <= 1000 (e.g. 2/4)"])
