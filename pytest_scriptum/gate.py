"""The promotion gate: smoke test counts -> a pass / fail / inconclusive verdict (pure logic).

Semantics (DESIGN.md section 3):

* **inconclusive** when preflight failed or a worker crashed; when a critical test is undecided
  (errored, skipped or never finished); or when the evidence is too thin
  (decided = passed + failed < ``min_tests``, or errors > ``max_errors``) *unless* the failures
  alone already prove the gate failed even if every errored test had passed: then **fail**.
* **fail** when a critical test failed or passed / decided < ``min_pass_rate``.
* Every reason names the errored tests (even within the budget) and the undecided critical ones.
* **pass** otherwise. Zero decided tests never pass, even with ``min_tests=0``: that verdict is
  inconclusive (nothing was shown about the candidate, so nothing is rolled back either).

How a smoke test's phase reports become one outcome (passed, failed, error, skipped) is
:func:`classify_phase` and :func:`combine`: the classification table of DESIGN section 3, as far
as pytest's reports carry it (what the platform did is already folded into ``platform_error`` /
``test_error`` by the process that ran the test).

Rates are compared exactly: ``min_pass_rate`` is read as the decimal the user wrote (``0.7`` is
7/10, not the binary float just below it), so "7 of 10 passed" meets a 0.7 bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

__all__ = [
    "GateConfig",
    "GateCounts",
    "Outcome",
    "Verdict",
    "attempts_outcome",
    "classify_phase",
    "combine",
    "evaluate",
    "failure_certain",
    "paired_outcome",
    "required_passes",
]

Outcome = Literal["passed", "failed", "error", "skipped"]
"""How one smoke test ended, for the gate."""


def classify_phase(
    when: str,
    result: str,
    *,
    xfail: bool = False,
    platform_error: bool = False,
    test_error: bool = False,
) -> Outcome:
    """What one phase report of a smoke test says (DESIGN section 3, "what counts").

    ``when``: setup, call or teardown; ``result``: the report's passed / failed / skipped, or
    ``rerun`` (a failed attempt a rerun plugin repeats: failed, as any failed attempt is);
    ``xfail``: the report carries ``wasxfail`` (an xfail or a non-strict xpass);
    ``platform_error``: the run failed for the platform's reasons (transport, deadline, drift,
    a ``PLATFORM_*`` failure, an unrequested cancel); ``test_error``: the test's own mistake found at
    run time. A failed call is the candidate's failure unless one of those two says otherwise; a
    failed setup or teardown is an error; skip, xfail and xpass count as skipped, never as a pass.
    """
    if result == "rerun":  # pytest-rerunfailures: a failed attempt; a later pass cannot undo it
        result = "failed"
    if result == "skipped" or (result == "passed" and xfail and when == "call"):
        return "skipped"
    if result == "failed":
        return "failed" if when == "call" and not (platform_error or test_error) else "error"
    return "passed"


def combine(current: Outcome, phase: Outcome) -> Outcome:
    """A test's outcome after one more phase: the first bad phase decides (a failed call followed
    by a teardown error stays failed), and a skip only replaces a pass."""
    if phase == "skipped":
        return "skipped" if current == "passed" else current
    if phase in ("failed", "error") and current in ("passed", "skipped"):
        return phase
    return current


def _check_count(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


@dataclass(frozen=True)
class GateConfig:
    """The gate's thresholds (``--scriptum-min-pass-rate``, ``-min-tests``, ``-max-errors``)."""

    min_pass_rate: float = 1.0
    min_tests: int = 1
    max_errors: int = 0

    def __post_init__(self) -> None:
        rate = self.min_pass_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError(f"min_pass_rate must be a number from 0 to 1, got {rate!r}")
        _check_count("min_tests", self.min_tests)
        _check_count("max_errors", self.max_errors)


@dataclass(frozen=True)
class GateCounts:
    """How the smoke tests of one run ended."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    critical_failed: tuple[str, ...] = ()
    """nodeids of failed tests marked ``scriptum(critical=True)``"""
    critical_undecided: tuple[str, ...] = ()
    """nodeids of critical tests that errored, were skipped or never finished (not run)"""
    errored: tuple[str, ...] = ()
    """nodeids of the errored tests, when known (every reason line names them)"""
    pinned_runs: int | None = None
    """smoke tests that ran a thread on the candidate; 0 is inconclusive (None: not counted)"""

    def __post_init__(self) -> None:
        for name in ("passed", "failed", "errors", "skipped"):
            _check_count(name, getattr(self, name))

    @property
    def decided(self) -> int:
        """Tests that ran to a verdict on the candidate: passed + failed."""
        return self.passed + self.failed


@dataclass(frozen=True)
class Verdict:
    """The gate's decision, with a human reason such as ``"failed 2 of 12 > allowed 0"``."""

    decision: Literal["pass", "fail", "inconclusive"]
    reason: str
    counts: GateCounts
    config: GateConfig


def _rate(config: GateConfig) -> Fraction:
    # str() of a float is the shortest decimal that round-trips: the value the user typed
    return Fraction(str(config.min_pass_rate))


def required_passes(total: int, config: GateConfig) -> int:
    """The fewest passes out of ``total`` that meet ``min_pass_rate`` (exact, no float rounding)."""
    return math.ceil(_rate(config) * total)


def _rate_broken(passed: int, total: int, config: GateConfig) -> bool:
    return total > 0 and passed < required_passes(total, config)


def _percent(config: GateConfig) -> str:
    return f"{float(_rate(config) * 100):g}%"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _critical_reason(counts: GateCounts) -> str:
    label = "critical test failed" if len(counts.critical_failed) == 1 else "critical tests failed"
    return f"{label}: {', '.join(counts.critical_failed)}"


def _names(nodeids: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(nodeids[:limit])
    return shown + (f" and {len(nodeids) - limit} more" if len(nodeids) > limit else "")


def _undecided_reason(counts: GateCounts) -> str:
    label = "critical test undecided" if len(counts.critical_undecided) == 1 else "critical tests undecided"
    return f"{label} (error or not run): {_names(counts.critical_undecided)}"


def _errors_note(counts: GateCounts, config: GateConfig) -> str:
    """What every reason line says about errored tests: how many, against the budget, and which."""
    within = "within" if counts.errors <= config.max_errors else ">"
    text = f"{_plural(counts.errors, 'error')} {within} allowed {config.max_errors}"
    return text + (f": {_names(counts.errored)}" if counts.errored else "")


def _always_said(counts: GateCounts, config: GateConfig) -> list[str]:
    """Said on every reason line: errors (even within the budget) and undecided critical tests."""
    notes: list[str] = []
    if counts.critical_undecided:
        notes.append(_undecided_reason(counts))
    if counts.errors:
        notes.append(_errors_note(counts, config))
    return notes


def _failed_reason(failed: int, total: int, config: GateConfig) -> str:
    allowed = total - required_passes(total, config)
    return f"failed {failed} of {total} > allowed {allowed}"


def evaluate(
    counts: GateCounts,
    config: GateConfig,
    *,
    preflight_failure: str | None = None,
    crashed_workers: Sequence[str] = (),
    collection_errors: Sequence[str] = (),
) -> Verdict:
    """The gate verdict for ``counts`` under ``config`` (DESIGN.md section 3).

    ``collection_errors``: nodeids of files or collectors that failed to collect (also under
    ``--continue-on-collection-errors`` and xdist): the suite is incomplete, so inconclusive."""

    def verdict(decision: Literal["pass", "fail", "inconclusive"], *reasons: str) -> Verdict:
        return Verdict(decision=decision, reason="; ".join(reasons), counts=counts, config=config)

    if preflight_failure is not None:
        return verdict("inconclusive", f"preflight failed: {preflight_failure}")
    if crashed_workers:
        label = "worker" if len(crashed_workers) == 1 else "workers"
        return verdict(
            "inconclusive", f"{label} {', '.join(crashed_workers)} crashed", *_always_said(counts, config)
        )
    if collection_errors:
        what = f"collection errors: {_names(list(collection_errors))} (the suite did not load whole)"
        return verdict("inconclusive", what, *_always_said(counts, config))

    decided = counts.decided
    notes = _always_said(counts, config)

    thin: list[str] = []
    if counts.critical_undecided:
        thin.append(_undecided_reason(counts))
    if counts.errors > config.max_errors:
        thin.append(_errors_note(counts, config))
    if decided < config.min_tests:
        thin.append(f"only {_plural(decided, 'decided smoke test')} < min {config.min_tests}")
    elif decided == 0:
        thin.append("no decided smoke tests (a gate never passes on zero tests)")
    if counts.pinned_runs == 0 and decided:
        thin.append("no smoke test ran a thread on the candidate (promotion checks alone prove nothing)")

    if thin:
        # Count every errored test as a pass: if the gate still fails, the errors cannot save it.
        best_case_total = decided + counts.errors
        proof: list[str] = []
        if counts.critical_failed:
            proof.append(_critical_reason(counts))
        if _rate_broken(counts.passed + counts.errors, best_case_total, config):
            reason = _failed_reason(counts.failed, best_case_total, config)
            if counts.errors == 1:
                reason += ", even if the errored test had passed"
            elif counts.errors:
                reason += f", even if all {counts.errors} errored tests had passed"
            proof.append(reason)
        if proof:
            return verdict("fail", *proof, *notes)
        return verdict("inconclusive", *thin, *(note for note in notes if note not in thin))

    reasons: list[str] = []
    if counts.critical_failed:
        reasons.append(_critical_reason(counts))
    if _rate_broken(counts.passed, decided, config):
        reasons.append(_failed_reason(counts.failed, decided, config))
    if reasons:
        return verdict("fail", *reasons, *notes)
    passed = f"passed {counts.passed} of {decided} (min pass rate {_percent(config)})"
    return verdict("pass", passed, *notes)


def failure_certain(counts: GateCounts, config: GateConfig, *, remaining: int) -> bool:
    """True once the gate can no longer pass even if every remaining and every errored test passed.

    For ``--scriptum-fail-fast``: a critical test failed, or the pass-rate bound is already broken
    counting the ``remaining`` (not yet finished) tests and the errored ones as passes. Whenever
    this is True, :func:`evaluate` on the same counts (remaining tests cancelled) returns "fail".
    """
    _check_count("remaining", remaining)
    if counts.critical_failed:
        return True
    optimistic_passed = counts.passed + counts.errors + remaining
    return _rate_broken(optimistic_passed, counts.decided + counts.errors + remaining, config)


def attempts_outcome(
    repeat: int, min_pass: int, *, passed: int, failed: int, errors: int
) -> tuple[Outcome, str]:
    """One repeated smoke case from its attempts (DESIGN section 8 "Repeats"): ``repeat`` attempts
    (N), ``min_pass`` (K) passing decided attempts needed; ``passed`` / ``failed`` decided attempts
    and ``errors`` errored ones (the platform's or an interrupted run: decided nothing).

    passed >= K: **passed**. passed + errors < K (the case cannot reach K even if every errored
    attempt had passed): **failed**, "3 of 5 < 4". Otherwise the errored attempts leave it open:
    **error** (undecided, never a pass; the design is silent on this case, this is our choice).
    Returns the outcome and one line saying why. Raises ValueError on counts that do not add up.
    """
    for name, value in (("passed", passed), ("failed", failed), ("errors", errors)):
        _check_count(name, value)
    if not 1 <= min_pass <= repeat or passed + failed + errors != repeat:
        raise ValueError(
            f"attempts do not add up: repeat={repeat}, min_pass={min_pass}, passed={passed}, "
            f"failed={failed}, errors={errors}"
        )
    errored = f", {_plural(errors, 'errored attempt')}" if errors else ""
    if passed >= min_pass:
        return "passed", f"{passed} of {repeat} passed >= {min_pass}{errored}"
    if passed + errors < min_pass:
        return "failed", f"{passed} of {repeat} < {min_pass}{errored}"
    return "error", (
        f"undecided: {passed} of {repeat} passed, {min_pass} needed, and "
        f"{_plural(errors, 'errored attempt')} left it open (errored attempts decide nothing)"
    )


def paired_outcome(
    candidate: Outcome, baseline: Outcome, *, version: int | None, candidate_line: str = ""
) -> tuple[Outcome, str]:
    """One case of a paired session (DESIGN section 8 "Paired baseline") from how its candidate
    side and its baseline side (the same checks on the rollback target ``version``) ended:

    candidate passed: **passed**; candidate errored: **error**; candidate failed and baseline
    passed: **failed** (a regression); both failed: **error** ("environmental": an outage or a
    revoked key, never a rollback trigger); baseline errored: **error** (undecided).
    ``candidate_line`` (the candidate side's own line, e.g. "3 of 5 < 4") is kept in the text.
    """
    side = f" ({candidate_line})" if candidate_line else ""
    if candidate == "passed":
        return "passed", f"passed on the candidate{side}"
    if candidate != "failed":
        return "error", f"the candidate's run errored{side}"
    if baseline == "passed":
        return "failed", f"regression: failed on the candidate{side}, passed on baseline v{version}"
    if baseline == "failed":
        return "error", (
            f"environmental: failed on the candidate{side} and on baseline v{version} too "
            "(an outage or a revoked key, not a regression: never a rollback trigger)"
        )
    return "error", f"undecided: failed on the candidate{side}, and the run on baseline v{version} errored"
