"""Issue 18 (memory): pytest keeps every report until the session ends, so the phases of a smoke
test that say the same share one record dict (``records.ReportRecord.attach``); one that says
something else carries its own, and the gate reads the same records either way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kit import write_smoke_ini
from kit.seeds.doubles import SCRIPT, smoke_suite, write_calc_seed

# Writes, per test, each phase's record dict and the identity of the object the report carries.
PHASES_CONFTEST = """
import json

SEEN = {}


def pytest_runtest_logreport(report):
    record = getattr(report, "scriptum", None)
    if record is not None:
        SEEN.setdefault(report.nodeid, []).append([report.when, id(record), record])


def pytest_sessionfinish(session):
    with open("phases.json", "w") as out:
        json.dump(SEEN, out)
"""


def _phases(pytester: pytest.Pytester) -> dict[str, list[list[object]]]:
    phases: dict[str, list[list[object]]] = json.loads(Path(pytester.path / "phases.json").read_text())
    return phases


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    write_calc_seed(pytester.path / "seed")
    write_smoke_ini(pytester, script=SCRIPT, seed="seed")
    pytester.makeconftest(PHASES_CONFTEST)
    pytester.makepyfile(test_smoke=smoke_suite(3))
    return pytester


def test_the_phases_of_a_passing_smoke_test_share_one_record(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--scriptum-version=3")
    assert result.ret == 0, result.stdout.str()
    phases = _phases(suite)
    assert len(phases) == 3
    for nodeid, seen in phases.items():
        assert [when for when, _, _ in seen] == ["setup", "call", "teardown"], nodeid
        assert len({identity for _, identity, _ in seen}) == 1, (nodeid, seen)
        (_, _, record) = seen[0]
        assert isinstance(record, dict)
        assert record["ran_thread"] is True
        assert record["run"]["script"] == SCRIPT and record["run"]["version"] == 3
        assert record["run"]["status"] == "COMPLETED" and record["run"]["thread_id"]


def test_a_phase_that_says_something_else_carries_its_own(suite: pytest.Pytester) -> None:
    # A body that raises a platform fault: the call's record says platform_error, setup's does not.
    suite.makepyfile(
        test_fault="""
        import pytest
        from pytest_scriptum.runner import PlatformFault

        pytestmark = pytest.mark.scriptum("calc")


        @pytest.mark.smoke_input({"x": 1})
        def test_fault(smoke_thread):
            raise PlatformFault("the platform fell over")
        """
    )
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--scriptum-version=3")
    assert result.ret != 0, result.stdout.str()
    seen = _phases(suite)["test_fault.py::test_fault"]
    records = {when: (identity, record) for when, identity, record in seen}
    assert records["call"][0] != records["setup"][0]
    call = records["call"][1]
    assert isinstance(call, dict) and call["platform_error"] is True
    assert "platform_error" not in records["setup"][1]  # type: ignore[operator]
    result.stdout.fnmatch_lines(["*1 error*"])


# Per test, at the session's end: whether its parsed markers are still kept on the item.
PARSED_CONFTEST = """
import json

from pytest_scriptum.markers import PARSED_KEY

ITEMS = {}


def pytest_runtest_protocol(item, nextitem):
    ITEMS[item.nodeid] = item


def pytest_sessionfinish(session):
    with open("parsed.json", "w") as out:
        json.dump({nodeid: PARSED_KEY in item.stash for nodeid, item in ITEMS.items()}, out)
"""


def test_a_finished_smoke_test_keeps_no_parsed_markers(pytester: pytest.Pytester) -> None:
    # Thousands of finished tests must not keep their parsed specs to the session's end (issue 18,
    # memory): they are dropped after each test's last report.
    write_calc_seed(pytester.path / "seed")
    write_smoke_ini(pytester, script=SCRIPT, seed="seed")
    pytester.makeconftest(PARSED_CONFTEST)
    pytester.makepyfile(test_smoke=smoke_suite(3))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--scriptum-version=3")
    assert result.ret == 0, result.stdout.str()
    kept = json.loads((pytester.path / "parsed.json").read_text())
    assert len(kept) == 3 and not any(kept.values()), kept
