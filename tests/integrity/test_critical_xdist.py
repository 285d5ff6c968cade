"""Issue 11 (remainder): under xdist, a critical test that never ran at all makes the gate
inconclusive exactly as in a single process. The controller collects nothing; each worker tells it
which critical tests it selected (``xdist.Rendezvous``), so one that never reports is undecided.

``-x`` with ``--dist loadfile`` makes "never ran" deterministic: the file's tests run in order on
one worker, whose own ``-x`` stops it at the plain test's failure, before the critical test.
"""

from __future__ import annotations

import json

import pytest
from kit.platform import Platform

SUITE = """
import pytest


@pytest.mark.smoke_input({"x": 1})
@pytest.mark.smoke_expect({"doubled": 2})
def test_a_passes():
    pass


def test_b_plain_fails():
    assert False, "an ordinary test fails; -x stops here"


@pytest.mark.scriptum(critical=True)
@pytest.mark.smoke_input({"x": 3})
@pytest.mark.smoke_expect({"doubled": 6})
def test_c_critical():
    pass
"""


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_critical_test_that_never_ran_is_undecided(
    pytester: pytest.Pytester, good_platform: Platform, workers: str
) -> None:
    pytester.makepyfile(test_smoke=SUITE)
    dist = ["--dist", "loadfile"] if workers != "0" else []
    args = good_platform.args("-x", "-n", workers, *dist, "--scriptum-evidence=ev/b.json", version=2)
    result = pytester.runpytest(*args)
    out = result.stdout.str()
    bundle = json.loads((pytester.path / "ev" / "b.json").read_text())
    assert bundle["verdict"] == "inconclusive", bundle["reason"]
    assert result.ret == 20, out
    assert (bundle["gate"]["passed"], bundle["gate"]["failed"]) == (1, 0)
    assert bundle["gate"]["critical_undecided"] == ["test_smoke.py::test_c_critical"]
    assert "critical test undecided (error or not run): test_smoke.py::test_c_critical" in bundle["reason"]
    assert bundle["rollback"] is None
    assert good_platform.active() == 2
    assert good_platform.rollbacks_in_history() == []
