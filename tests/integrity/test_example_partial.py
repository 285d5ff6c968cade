"""Input 4 of issue 11 on the shipped example suite: its known-bad v4, with only the promotion
checks selected (``-k "overlay or gateway"``), must not PASS — no thread ran on the candidate."""

from __future__ import annotations

import json

import pytest
from kit import copy_example_suite


def test_promotion_checks_alone_do_not_pass_the_known_bad_v4(pytester: pytest.Pytester) -> None:
    copy_example_suite(pytester)
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--scriptum-version=4",
        "--scriptum-evidence=ev/b.json",
        "-k",
        "overlay or gateway",
    )
    out = result.stdout.str()
    assert result.ret != 0, out
    assert "verdict: PASS" not in out
    bundle = json.loads((pytester.path / "ev" / "b.json").read_text())
    assert bundle["verdict"] == "inconclusive", bundle["reason"]
    assert result.ret == 20
    assert "no smoke test ran a thread on the candidate" in bundle["reason"]
    assert bundle["selection"]["partial"] is True
    assert bundle["rollback"] is None
