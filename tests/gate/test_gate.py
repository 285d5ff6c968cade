"""The gate verdict: a table over every combination class, exact rate boundaries, fail-fast."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_scriptum.gate import GateConfig, GateCounts, evaluate, failure_certain, required_passes


@dataclass(frozen=True)
class Row:
    id: str
    counts: GateCounts
    config: GateConfig
    decision: str
    reason: str
    preflight: str | None = None
    crashed: tuple[str, ...] = ()


DEFAULT = GateConfig()
TABLE = [
    # pass
    Row("all-passed", GateCounts(passed=12), DEFAULT, "pass", "passed 12 of 12 (min pass rate 100%)"),
    Row(
        "skips-do-not-count",
        GateCounts(passed=3, skipped=9),
        DEFAULT,
        "pass",
        "passed 3 of 3 (min pass rate 100%)",
    ),
    Row(
        "critical-errored-within-budget-is-inconclusive",  # issue 11 input 12
        GateCounts(passed=5, errors=1, critical_undecided=("t::crit",), errored=("t::crit",)),
        GateConfig(max_errors=1),
        "inconclusive",
        "critical test undecided (error or not run): t::crit; 1 error within allowed 1: t::crit",
    ),
    Row(
        "critical-not-run-is-inconclusive",
        GateCounts(passed=5, critical_undecided=("t::crit",)),
        DEFAULT,
        "inconclusive",
        "critical test undecided (error or not run): t::crit",
    ),
    Row(
        "critical-undecided-but-failures-prove-fail",
        GateCounts(passed=1, failed=4, critical_undecided=("t::crit",)),
        DEFAULT,
        "fail",
        "failed 4 of 5 > allowed 0; critical test undecided (error or not run): t::crit",
    ),
    Row(
        "errors-within-budget",
        GateCounts(passed=5, errors=1),
        GateConfig(max_errors=1),
        "pass",
        "passed 5 of 5 (min pass rate 100%); 1 error within allowed 1",
    ),
    Row(
        "min-tests-zero-with-tests",
        GateCounts(passed=1),
        GateConfig(min_tests=0),
        "pass",
        "passed 1 of 1 (min pass rate 100%)",
    ),
    Row(
        "rate-zero-all-failed",
        GateCounts(failed=4),
        GateConfig(min_pass_rate=0.0),
        "pass",
        "passed 0 of 4 (min pass rate 0%)",
    ),
    # exact rate boundaries (0.7 * 10 is 7.000000000000001 in floats; 0.9 of 10 is exactly 9)
    Row(
        "rate-0.7-boundary-pass",
        GateCounts(passed=7, failed=3),
        GateConfig(min_pass_rate=0.7),
        "pass",
        "passed 7 of 10 (min pass rate 70%)",
    ),
    Row(
        "rate-0.7-boundary-fail",
        GateCounts(passed=6, failed=4),
        GateConfig(min_pass_rate=0.7),
        "fail",
        "failed 4 of 10 > allowed 3",
    ),
    Row(
        "rate-0.9-boundary-pass",
        GateCounts(passed=9, failed=1),
        GateConfig(min_pass_rate=0.9),
        "pass",
        "passed 9 of 10 (min pass rate 90%)",
    ),
    Row(
        "rate-0.9-of-12-rounds-up",
        GateCounts(passed=10, failed=2),
        GateConfig(min_pass_rate=0.9),
        "fail",
        "failed 2 of 12 > allowed 1",
    ),
    Row(
        "rate-0.95-of-20-pass",
        GateCounts(passed=19, failed=1),
        GateConfig(min_pass_rate=0.95),
        "pass",
        "passed 19 of 20 (min pass rate 95%)",
    ),
    Row(
        "rate-0.29-of-100-boundary",  # 0.29 * 100 is 28.999999999999996 in floats
        GateCounts(passed=29, failed=71),
        GateConfig(min_pass_rate=0.29),
        "pass",
        "passed 29 of 100 (min pass rate 29%)",
    ),
    Row(
        "rate-0.29-of-100-below",
        GateCounts(passed=28, failed=72),
        GateConfig(min_pass_rate=0.29),
        "fail",
        "failed 72 of 100 > allowed 71",
    ),
    # fail
    Row(
        "one-failure-default", GateCounts(passed=10, failed=2), DEFAULT, "fail", "failed 2 of 12 > allowed 0"
    ),
    Row(
        "critical-despite-rate",
        GateCounts(passed=9, failed=1, critical_failed=("smoke/test_a.py::test_prod",)),
        GateConfig(min_pass_rate=0.5),
        "fail",
        "critical test failed: smoke/test_a.py::test_prod",
    ),
    Row(
        "critical-and-rate",
        GateCounts(passed=1, failed=2, critical_failed=("t::a", "t::b")),
        DEFAULT,
        "fail",
        "critical tests failed: t::a, t::b; failed 2 of 3 > allowed 0",
    ),
    # inconclusive: too little evidence
    Row("zero-tests", GateCounts(), DEFAULT, "inconclusive", "only 0 decided smoke tests < min 1"),
    Row(
        "zero-tests-min-zero",
        GateCounts(skipped=3),
        GateConfig(min_tests=0),
        "inconclusive",
        "no decided smoke tests (a gate never passes on zero tests)",
    ),
    Row(
        "too-few-decided",
        GateCounts(passed=2),
        GateConfig(min_tests=3),
        "inconclusive",
        "only 2 decided smoke tests < min 3",
    ),
    Row(
        "one-decided-singular",
        GateCounts(passed=1),
        GateConfig(min_tests=2),
        "inconclusive",
        "only 1 decided smoke test < min 2",
    ),
    Row(
        "errors-over-budget",
        GateCounts(passed=9, errors=3),
        DEFAULT,
        "inconclusive",
        "3 errors > allowed 0",
    ),
    Row(
        "one-error-singular",
        GateCounts(passed=9, errors=1),
        DEFAULT,
        "inconclusive",
        "1 error > allowed 0",
    ),
    Row(
        "errors-and-too-few",
        GateCounts(errors=2),
        DEFAULT,
        "inconclusive",
        "2 errors > allowed 0; only 0 decided smoke tests < min 1",
    ),
    Row(
        "errors-could-save-the-rate",  # 8 passed + 2 errors of 11 would meet 0.7
        GateCounts(passed=8, failed=1, errors=2),
        GateConfig(min_pass_rate=0.7),
        "inconclusive",
        "2 errors > allowed 0",
    ),
    Row(
        "failures-below-min-tests-could-still-pass",
        GateCounts(passed=2, failed=1),
        GateConfig(min_pass_rate=0.5, min_tests=5),
        "inconclusive",
        "only 3 decided smoke tests < min 5",
    ),
    # fail: the failures alone prove it despite thin evidence
    Row(
        "failures-prove-fail-despite-errors",
        GateCounts(passed=5, failed=2, errors=3),
        DEFAULT,
        "fail",
        "failed 2 of 10 > allowed 0, even if all 3 errored tests had passed; 3 errors > allowed 0",
    ),
    Row(
        "failures-prove-fail-despite-one-error",
        GateCounts(passed=1, failed=5, errors=1),
        GateConfig(min_pass_rate=0.5),
        "fail",
        "failed 5 of 7 > allowed 3, even if the errored test had passed; 1 error > allowed 0",
    ),
    Row(
        "failures-prove-fail-below-min-tests",
        GateCounts(failed=2),
        GateConfig(min_tests=5),
        "fail",
        "failed 2 of 2 > allowed 0",
    ),
    Row(
        "critical-proves-fail-despite-errors",
        GateCounts(passed=3, failed=1, errors=4, critical_failed=("t::crit",)),
        GateConfig(min_pass_rate=0.5),
        "fail",
        "critical test failed: t::crit; 4 errors > allowed 0",
    ),
    Row(
        "proof-boundary-exactly-met-is-not-proof",  # 7 passed + 3 errors of 10 meets 0.7 exactly
        GateCounts(passed=4, failed=3, errors=3),
        GateConfig(min_pass_rate=0.7),
        "inconclusive",
        "3 errors > allowed 0",
    ),
    Row(
        "proof-boundary-one-short-is-proof",
        GateCounts(passed=3, failed=4, errors=3),
        GateConfig(min_pass_rate=0.7),
        "fail",
        "failed 4 of 10 > allowed 3, even if all 3 errored tests had passed; 3 errors > allowed 0",
    ),
    # inconclusive whatever the counts: preflight, crashed workers
    Row(
        "preflight-failed",
        GateCounts(),
        DEFAULT,
        "inconclusive",
        "preflight failed: rollback target v3 does not exist",
        preflight="rollback target v3 does not exist",
    ),
    Row(
        "preflight-beats-failures",
        GateCounts(failed=5, critical_failed=("t::x",)),
        DEFAULT,
        "inconclusive",
        "preflight failed: candidate v9 not found",
        preflight="candidate v9 not found",
    ),
    Row(
        "worker-crashed",
        GateCounts(passed=12),
        DEFAULT,
        "inconclusive",
        "worker gw1 crashed",
        crashed=("gw1",),
    ),
    Row(
        "workers-crashed",
        GateCounts(passed=3, failed=1),
        DEFAULT,
        "inconclusive",
        "workers gw0, gw2 crashed",
        crashed=("gw0", "gw2"),
    ),
]


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_verdict_table(row: Row) -> None:
    verdict = evaluate(row.counts, row.config, preflight_failure=row.preflight, crashed_workers=row.crashed)
    assert (verdict.decision, verdict.reason) == (row.decision, row.reason)
    assert verdict.counts is row.counts
    assert verdict.config is row.config


def test_table_covers_every_decision() -> None:
    assert {row.decision for row in TABLE} == {"pass", "fail", "inconclusive"}


@pytest.mark.parametrize(
    ("rate", "total", "needed"),
    [(0.7, 10, 7), (0.9, 10, 9), (0.9, 12, 11), (0.29, 100, 29), (0.1, 3, 1), (1.0, 7, 7), (0.0, 5, 0)],
)
def test_required_passes_is_exact(rate: float, total: int, needed: int) -> None:
    assert required_passes(total, GateConfig(min_pass_rate=rate)) == needed


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_pass_rate": 1.5}, "min_pass_rate"),
        ({"min_pass_rate": -0.1}, "min_pass_rate"),
        ({"min_pass_rate": float("nan")}, "min_pass_rate"),
        ({"min_pass_rate": True}, "min_pass_rate"),
        ({"min_tests": -1}, "min_tests"),
        ({"max_errors": 1.5}, "max_errors"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        GateConfig(**kwargs)  # type: ignore[arg-type]


def test_counts_reject_negative() -> None:
    with pytest.raises(ValueError, match="failed"):
        GateCounts(failed=-1)


# --- fail-fast ---------------------------------------------------------------------------------

FAIL_FAST = [
    ("nothing-failed", GateCounts(passed=3), DEFAULT, 5, False),
    ("one-failure-rate-1", GateCounts(passed=3, failed=1), DEFAULT, 5, True),
    ("critical", GateCounts(failed=1, critical_failed=("t::c",)), GateConfig(min_pass_rate=0.0), 9, True),
    # 0.7: 1 failure in 10 possible is fine, 4 of 10 is certain failure
    ("rate-still-reachable", GateCounts(passed=1, failed=3), GateConfig(min_pass_rate=0.7), 6, False),
    ("rate-broken", GateCounts(passed=1, failed=4), GateConfig(min_pass_rate=0.7), 5, True),
    # errors count as potential passes: 2 failed of 10 with 0.8 is still reachable
    ("errors-as-passes", GateCounts(passed=1, failed=2, errors=3), GateConfig(min_pass_rate=0.8), 4, False),
    ("errors-not-enough", GateCounts(passed=1, failed=3, errors=3), GateConfig(min_pass_rate=0.8), 3, True),
]


@pytest.mark.parametrize(
    ("counts", "config", "remaining", "certain"),
    [row[1:] for row in FAIL_FAST],
    ids=[row[0] for row in FAIL_FAST],
)
def test_failure_certain(counts: GateCounts, config: GateConfig, remaining: int, certain: bool) -> None:
    assert failure_certain(counts, config, remaining=remaining) is certain


def test_failure_certain_rejects_negative_remaining() -> None:
    with pytest.raises(ValueError, match="remaining"):
        failure_certain(GateCounts(), DEFAULT, remaining=-1)


_counts = st.builds(
    GateCounts,
    passed=st.integers(0, 30),
    failed=st.integers(0, 30),
    errors=st.integers(0, 5),
    skipped=st.integers(0, 3),
)
_configs = st.builds(
    GateConfig,
    min_pass_rate=st.sampled_from([0.0, 0.1, 0.29, 0.5, 0.7, 0.9, 0.95, 1.0]),
    min_tests=st.integers(0, 10),
    max_errors=st.integers(0, 3),
)


@settings(deadline=None)  # never a timed assertion: CI shares 2 cores
@given(_counts, _configs, st.integers(0, 20), st.integers(0, 20))
def test_failure_certain_means_no_completion_passes(
    counts: GateCounts, config: GateConfig, remaining: int, passes: int
) -> None:
    """Once failure is certain, no outcome of the remaining tests yields a pass, and stopping now fails."""
    if not failure_certain(counts, config, remaining=remaining):
        return
    assert evaluate(counts, config).decision == "fail"
    later_passes = min(passes, remaining)
    completed = GateCounts(
        passed=counts.passed + later_passes,
        failed=counts.failed + remaining - later_passes,
        errors=counts.errors,
    )
    assert evaluate(completed, config).decision != "pass"


@settings(deadline=None)  # never a timed assertion: CI shares 2 cores
@given(_counts, _configs)
def test_pass_needs_enough_clean_evidence(counts: GateCounts, config: GateConfig) -> None:
    verdict = evaluate(counts, config)
    if verdict.decision == "pass":
        assert counts.decided >= max(config.min_tests, 1)
        assert counts.errors <= config.max_errors
        assert counts.passed * 100 >= round(config.min_pass_rate * 100) * counts.decided
    assert verdict.reason
