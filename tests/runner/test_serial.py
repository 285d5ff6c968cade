"""serial=True tests and imperative scriptum_runner calls run inline, in the order their tests run."""

from __future__ import annotations

import pytest
from kit.seeds.svc import StartPlatform

# Appends the id to a log and answers with its arrival number and whether the gate file existed
# then; the random pause would shuffle the log if these runs overlapped.
ORDERED = """
import os
import random
import time

def handler(event, context):
    time.sleep(random.uniform(0.0, 0.03))
    with open({log!r}, "a") as log:
        log.write(str(event["id"]) + "\\n")
    with open({log!r}) as log:
        seq = len(log.read().split())
    return {{"id": event["id"], "seq": seq, "gate_open": os.path.exists({gate!r})}}
"""

SERIAL_TESTS = """
import pathlib

import pytest

serial = pytest.mark.scriptum("svc", serial=True)


def test_0_open_gate():
    pathlib.Path({gate!r}).touch()  # serial runs start after this: none was dispatched early
{cases}

@pytest.mark.scriptum("svc")
def test_9_imperative(scriptum_runner):
    result = scriptum_runner.run({{"id": 9}})
    assert result.output == {{"id": 9, "seq": 6, "gate_open": True}}
"""

SERIAL_CASE = """

@serial
@pytest.mark.smoke_input({{"id": {n}}})
@pytest.mark.smoke_expect({{"id": {n}, "seq": {n}, "gate_open": True}}, match="exact")
def test_{n}_serial():
    pass
"""


def test_serial_runs_in_collection_order_after_earlier_tests(
    pytester: pytest.Pytester, start_platform: StartPlatform
) -> None:
    log = pytester.path / "arrivals.log"
    gate = pytester.path / "gate"
    source = ORDERED.format(log=str(log), gate=str(gate))
    platform = start_platform({1: source, 2: source})
    cases = "".join(SERIAL_CASE.format(n=n) for n in range(1, 6))
    pytester.makepyfile(test_inner_serial=SERIAL_TESTS.format(gate=str(gate), cases=cases))

    result = pytester.runpytest(*platform.args("-v"))

    result.assert_outcomes(passed=7)
    assert log.read_text().split() == ["1", "2", "3", "4", "5", "9"]
    stats = platform.settled_stats()
    assert stats.runs_started == 6
    assert stats.max_runs_in_flight == 1
