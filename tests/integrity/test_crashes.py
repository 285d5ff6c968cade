"""Inputs 7 and 8 of issue 11: an xdist worker that dies while running a smoke test makes that
test an error (never the pass its setup reported) and the verdict inconclusive; a module that
fails to import makes the verdict inconclusive — with ``--continue-on-collection-errors`` and
under xdist — never PASS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kit.evidence import read_junit
from kit.platform import Platform
from kit.seeds.doubles import smoke_suite

from pytest_scriptum.evidence import validate_bundle

KILLER = """
import os


def test_kills_its_worker(scriptum_runner):
    assert scriptum_runner.run({"x": 2}).output["doubled"] == 4
    os._exit(3)
"""


def _bundle(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / "ev" / "b.json").read_text())
    validate_bundle(data)
    return data


def test_a_worker_dying_in_a_smoke_test_is_an_error_and_inconclusive(
    pytester: pytest.Pytester, good_platform: Platform
) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(2), test_killer=KILLER)
    args = good_platform.args("--scriptum-evidence=ev/b.json", "-n", "2", version=2)
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == 20, result.stdout.str()
    bundle = _bundle(pytester)
    assert bundle["verdict"] == "inconclusive"
    assert "crashed" in bundle["reason"]
    outcomes = {t["nodeid"]: t["outcome"] for t in bundle["tests"]}
    assert outcomes["test_killer.py::test_kills_its_worker"] == "error"
    gate = bundle["gate"]
    assert (gate["passed"], gate["failed"], gate["errors"]) == (2, 0, 1)
    assert bundle["rollback"] is None
    assert good_platform.active() == 2
    assert good_platform.rollbacks_in_history() == []


BROKEN_MODULE = "import no_such_module_for_scriptum  # noqa\n"


@pytest.mark.parametrize(
    "mode", [["--continue-on-collection-errors"], ["-n", "2"], ["-n", "2", "--continue-on-collection-errors"]]
)
def test_a_module_that_fails_to_import_never_passes(
    pytester: pytest.Pytester, good_platform: Platform, mode: list[str]
) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(2), test_broken=BROKEN_MODULE)
    args = good_platform.args("--scriptum-evidence=ev/b.json", "--junitxml=ev/j.xml", *mode, version=2)
    result = pytester.runpytest_subprocess(*args)
    out = result.stdout.str()
    assert result.ret == 20, out
    bundle = _bundle(pytester)
    assert bundle["verdict"] == "inconclusive"
    assert "collection errors: test_broken.py" in bundle["reason"]
    assert read_junit(pytester.path / "ev" / "j.xml").suite_properties["scriptum.verdict"] == "inconclusive"
    assert "verdict: INCONCLUSIVE - collection errors: test_broken.py" in out
    assert bundle["rollback"] is None
    assert good_platform.active() == 2
