"""Rollback target: walk the activation history, skip versions rolled back from, never candidate - 1."""

from __future__ import annotations

import pytest

from pytest_scriptum.client._records import Activation, Script
from pytest_scriptum.preflight import choose_target


def script(
    active: int, history: list[tuple[int, int, str]] | None, latest: int = 9
) -> Script:
    """history entries: (version, from_version, kind); None: the platform offers no history."""
    entries = None
    if history is not None:
        entries = tuple(
            Activation(sequence=n, version=v, from_version=f, kind=k)
            for n, (v, f, k) in enumerate(history, start=1)
        )
    return Script(name="s", active_version=active, latest_version=latest, history=entries)


A, R = "PUBLISH", "ROLLBACK"


@pytest.mark.parametrize(
    ("case", "candidate", "expected"),
    [
        # seed active: 4 -> history 1,2,3,4: the version before 4 is 3
        (script(4, [(1, 0, A), (2, 1, A), (3, 2, A), (4, 3, A)]), 4, 3),
        # 5 activated straight after 2 (3 and 4 never active): target is 2, not 4 = candidate - 1
        (script(5, [(1, 0, A), (2, 1, A), (5, 2, A)]), 5, 2),
        # 4 was rolled back to 3, then 5 came: target 3
        (script(5, [(2, 0, A), (3, 2, A), (4, 3, A), (3, 4, R), (5, 3, A)]), 5, 3),
        # the version before the candidate was rolled back from: skip it
        (script(6, [(2, 0, A), (3, 2, A), (5, 3, A), (3, 5, R), (5, 3, A), (6, 5, A)]), 6, 3),
        # the candidate was activated twice: the last activation counts
        (script(4, [(3, 0, A), (4, 3, A), (3, 4, R), (2, 3, A), (4, 2, A)]), 4, 2),
        # never activated candidate: what is active now is the known-good version
        (script(3, [(1, 0, A), (2, 1, A), (3, 2, A)]), 5, 3),
        # first version ever: nothing to roll back to
        (script(1, [(1, 0, A)]), 1, None),
        # nothing active, candidate never activated
        (script(0, []), 1, None),
        # no history on the platform: no target from history, whatever is active (never guess)
        (script(4, None), 4, None),
        (script(3, None), 5, None),
    ],
)
def test_choose_target(case: Script, candidate: int, expected: int | None) -> None:
    assert choose_target(case, candidate) == expected


def test_rolled_back_from_comes_from_the_history() -> None:
    case = script(5, [(2, 0, A), (3, 2, A), (4, 3, A), (3, 4, R), (5, 3, A), (2, 5, R), (5, 2, A)])
    assert case.rolled_back_from == (4, 5)
    assert script(4, None).rolled_back_from == ()
