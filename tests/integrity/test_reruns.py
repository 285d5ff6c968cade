"""Input 6 of issue 11: with pytest-rerunfailures every attempt is recorded (``attempts`` in the
bundle, ``scriptum.attempts`` in JUnit) and any failed attempt makes the test failed; a
marker-declared run is not silently reused by the next attempt (each attempt runs its own thread)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kit.evidence import read_junit
from kit.platform import Platform
from kit.seeds.doubles import smoke_suite

from pytest_scriptum.evidence import validate_bundle

FLAKY_BODY = """
import pathlib


def test_flaky_body_check(scriptum_runner):
    marker = pathlib.Path("attempted")
    first = not marker.exists()
    marker.write_text("1")
    doubled = scriptum_runner.run({"x": 2}).output["doubled"]
    assert doubled == (5 if first else 4)
"""


def _bundle(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / "ev" / "b.json").read_text())
    validate_bundle(data)
    return data


def test_a_failed_attempt_fails_the_gate_even_if_a_rerun_passes(
    pytester: pytest.Pytester, good_platform: Platform
) -> None:
    pytester.makepyfile(test_flaky=FLAKY_BODY)
    args = good_platform.args(
        "--reruns=2",
        "--scriptum-rollback=dry-run",
        "--scriptum-evidence=ev/b.json",
        "--junitxml=ev/j.xml",
        version=2,
    )
    result = pytester.runpytest(*args)
    out = result.stdout.str()
    assert "1 rerun" in out, out
    assert result.ret == 1, out
    bundle = _bundle(pytester)
    assert bundle["verdict"] == "fail"
    assert (bundle["gate"]["passed"], bundle["gate"]["failed"], bundle["gate"]["errors"]) == (0, 1, 0)
    (test,) = bundle["tests"]
    assert (test["outcome"], test["attempts"]) == ("failed", 2)
    assert "assert 4 == 5" in test["error"]
    case = read_junit(pytester.path / "ev" / "j.xml").cases["test_flaky_body_check"]
    assert case.properties["scriptum.attempts"] == "2"
    assert bundle["rollback"]["status"] == "dry_run"
    assert good_platform.active() == 2
    assert good_platform.calls("RollbackScript") == 0


def test_each_attempt_of_a_marker_declared_test_runs_its_own_thread(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    pytester.makepyfile(
        test_smoke=smoke_suite(1).replace('x": 0', 'x": 3').replace('doubled": 0', 'doubled": 6')
    )
    args = platform.args(
        "--reruns=2", "--scriptum-rollback=dry-run", "--scriptum-evidence=ev/b.json", version=2
    )
    result = pytester.runpytest(*args)
    assert result.ret == 1, result.stdout.str()
    bundle = _bundle(pytester)
    (test,) = bundle["tests"]
    assert (test["outcome"], test["attempts"]) == ("failed", 3)
    assert platform.calls("CreateThread") == 3  # three attempts, three threads: none reused
    assert platform.active() == 2
