"""Input 4 of issue 11 (DESIGN section 3 "What counts"): a test is gate evidence only when it used
the platform; a ``scriptum`` marker alone does not make one, skips never count as passes, and
promotion checks without a single pinned thread prove nothing about the candidate."""

from __future__ import annotations

import json

import pytest
from kit.platform import Platform

SKIPPING_AND_PLAIN = """
import pytest

pytestmark = pytest.mark.scriptum("calc")


@pytest.mark.skip(reason="flaky upstream")
@pytest.mark.smoke_input({"x": 1})
@pytest.mark.smoke_expect({"doubled": 2})
def test_declared_one():
    pass


@pytest.mark.skipif(True, reason="not today")
@pytest.mark.smoke_input({"x": 20})
@pytest.mark.smoke_expect({"doubled": 40})
def test_declared_two():
    pass


def test_plain_under_the_marker():
    assert 1 + 1 == 2


def test_requests_the_runner_but_never_runs(scriptum_runner):
    assert scriptum_runner.version == 2
"""

PROMOTION_CHECKS_ONLY = """
def test_candidate_is_published(scriptum_client):
    versions = [v.version for v in scriptum_client.list_script_versions("calc")]
    assert 2 in versions
"""


def _bundle(pytester: pytest.Pytester) -> dict:  # type: ignore[type-arg]
    return json.loads((pytester.path / "ev" / "b.json").read_text())  # type: ignore[no-any-return]


def test_skips_and_tests_that_never_used_the_platform_are_not_a_pass(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    pytester.makepyfile(test_smoke=SKIPPING_AND_PLAIN)
    result = pytester.runpytest(*platform.args("--scriptum-evidence=ev/b.json", version=2))
    assert result.ret == 20, result.stdout.str()
    bundle = _bundle(pytester)
    assert bundle["verdict"] == "inconclusive"
    gate = bundle["gate"]
    assert (gate["passed"], gate["failed"], gate["errors"], gate["skipped"]) == (0, 0, 0, 2)
    assert sorted(t["nodeid"] for t in bundle["tests"]) == [
        "test_smoke.py::test_declared_one",
        "test_smoke.py::test_declared_two",
    ]
    assert bundle["rollback"] is None
    assert platform.active() == 2
    assert platform.calls("RollbackScript") == 0


def test_promotion_checks_without_a_pinned_thread_are_inconclusive(
    pytester: pytest.Pytester, good_platform: Platform
) -> None:
    pytester.makepyfile(test_checks=PROMOTION_CHECKS_ONLY)
    result = pytester.runpytest(*good_platform.args("--scriptum-evidence=ev/b.json", version=2))
    assert result.ret == 20, result.stdout.str()
    bundle = _bundle(pytester)
    assert bundle["verdict"] == "inconclusive"
    assert "no smoke test ran a thread on the candidate" in bundle["reason"]
    assert (bundle["gate"]["passed"], bundle["gate"]["failed"]) == (1, 0)
    assert good_platform.active() == 2
