"""The rollback and promotion tests' calc: a good handler, one whose sums above 10 are off by one
(the regression: small sums still pass), and the suite they gate (three case files plus one
marker test), written by ``write_calc_suite``."""

from __future__ import annotations

import json

import pytest

__all__ = ["CASES", "GOOD", "REGRESSION", "SUITE", "write_calc_suite"]

GOOD = "def handler(event, context):\n    return {'sum': event['a'] + event['b']}\n"
REGRESSION = (
    "def handler(event, context):\n    s = event['a'] + event['b']\n"
    "    return {'sum': s + 1 if s > 10 else s}\n"
)
SUITE = """
import pytest

pytestmark = pytest.mark.scriptum("calc")


@pytest.mark.smoke_cases("cases/*.json")
def test_case():
    pass


@pytest.mark.smoke_input({"a": 1, "b": 2})
@pytest.mark.smoke_expect({"sum": 3})
def test_small():
    pass
"""
CASES = {"small": (2, 3, 5), "big": (20, 30, 50), "bigger": (40, 2, 42)}


def write_calc_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """The ini (script calc, evidence/bundle.json), SUITE and its case files, in ``pytester``."""
    pytester.makeini("[pytest]\nscriptum_script = calc\nscriptum_evidence = evidence/bundle.json\n")
    pytester.makepyfile(test_calc=SUITE)
    cases = pytester.mkdir("cases")
    for case_id, (a, b, total) in CASES.items():
        (cases / f"{case_id}.json").write_text(
            json.dumps({"id": case_id, "input": {"a": a, "b": b}, "expect": {"output": {"sum": total}}})
        )
    return pytester
