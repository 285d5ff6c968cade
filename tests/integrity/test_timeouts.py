"""Input 1 of issue 11: a timeout that fires while a platform call is in flight is an error, never
the candidate's failure — decided by "a call was in flight", not by the timeout plugin's words."""

from __future__ import annotations

import json

import pytest
from kit.platform import Platform

BODY = """
def test_runner_waits_for_the_platform(scriptum_runner):
    assert scriptum_runner.run({"x": 2}).output["doubled"] == 4
"""


def test_pytest_timeout_during_a_stalled_call_is_an_error_and_no_rollback(
    pytester: pytest.Pytester, good_platform: Platform
) -> None:
    pytester.makepyfile(test_smoke=BODY)
    good_platform.set_faults(stall=True, methods=["WatchThread"])
    args = good_platform.args(
        "--timeout=3",
        "--timeout-method=signal",
        "--scriptum-timeout=120",
        "--scriptum-evidence=ev/scriptum.json",
        "-p",
        "timeout",
        version=2,
    )
    result = pytester.runpytest_subprocess(*args)
    out = result.stdout.str()
    assert result.ret == 20, out
    bundle = json.loads((pytester.path / "ev" / "scriptum.json").read_text())
    assert bundle["verdict"] == "inconclusive"
    assert (bundle["gate"]["failed"], bundle["gate"]["errors"]) == (0, 1)
    (test,) = bundle["tests"]
    assert test["outcome"] == "error"
    assert "platform call was in flight" in test["error"]
    assert bundle["rollback"] is None
    good_platform.set_faults()
    assert good_platform.active() == 2
    assert good_platform.rollbacks_in_history() == []
