"""While the verification re-run works, the parent's terminal shows how far it got ("tests done of
total"): the child writes ``verification-vN.progress`` beside its bundle after each test, the
parent reads it while it waits and prints the line, then removes the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_scriptum._session.progress import ProgressFile, progress_path, read_progress


def test_the_parent_shows_the_re_runs_progress_and_cleans_up(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--scriptum-version=2", "-p", "no:cacheprovider")
    assert result.ret == 1, result.stdout.str()
    lines = result.stdout.lines
    start = lines.index("scriptum: verification re-run on v1: starting")
    done = lines.index("scriptum: verification re-run on v1: 3/3 tests done")
    summary = next(i for i, line in enumerate(lines) if "scriptum promotion gate" in line)
    assert start < done < summary  # shown while the re-run works, before the gate's summary
    evidence = suite.path / "evidence"
    assert (evidence / "verification-v1.json").is_file()
    assert not list(evidence.glob("*.progress"))


def test_the_child_end_writes_done_and_total_after_each_test(tmp_path: Path) -> None:
    bundle = tmp_path / "verification-v3.json"
    writer = ProgressFile(bundle)
    assert progress_path(bundle) == tmp_path / "verification-v3.progress"
    assert read_progress(writer.path) is None

    class Session:
        items = [object(), object()]

    writer.pytest_collection_finish(Session())  # type: ignore[arg-type]
    assert read_progress(writer.path) == (0, 2)
    writer.pytest_runtest_logfinish("t::a", ("t.py", 1, "a"))
    assert read_progress(writer.path) == (1, 2)
    writer.path.write_text("1")  # half a line (never written so, atomically) reads as unknown
    assert read_progress(writer.path) is None
