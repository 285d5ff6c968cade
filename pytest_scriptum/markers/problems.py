"""Marker mistakes: :class:`MarkerError` (public) and the internal :class:`Invalid` it is made from.

Checks deep inside the parser raise :class:`Invalid` with the problem alone; :func:`checked` is the
boundary that turns it into a :class:`MarkerError` naming the test, the marker and the file, so a
mistake is reported at collection without a traceback from plugin internals.
:class:`CollectionProblems` gathers every mistake of a module (or class) and reports them together,
each with its file and line, as that collector's one collection error.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

from pytest_scriptum.spec import short_repr

__all__ = [
    "CollectionProblems",
    "Invalid",
    "MarkerError",
    "Where",
    "checked",
    "report_marker_problem",
    "short",
    "where_of",
]

_T = TypeVar("_T")

short = short_repr
"""``repr`` cut to 60 characters, safe on objects whose ``__repr__`` raises."""


class MarkerError(Exception):
    """A bad marker argument.

    ``str()`` names the test, the marker and the file, e.g. ``"test_totals (smoke/test_invoice.py):
    @pytest.mark.smoke_expect: schema file 'out.json' not found (smoke/out.json)"``.
    """

    def __init__(self, *, test: str, marker: str, file: str, problem: str) -> None:
        self.test = test
        self.marker = marker
        self.file = file
        self.problem = problem
        super().__init__(f"{test} ({file}): @pytest.mark.{marker}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only __init__: rebuild from the fields so the error pickles (xdist, multiprocessing)
        fields = {"test": self.test, "marker": self.marker, "file": self.file, "problem": self.problem}
        return (functools.partial(MarkerError, **fields), ())


class Invalid(Exception):
    """A problem found while checking a value; becomes a MarkerError at the marker boundary."""


@dataclass(frozen=True)
class Where:
    """Where a marker is being checked: for error messages and for resolving ``@file`` refs.

    ``test``: the test's name within its file (``TestClass::test_x``); ``file``: the test file as
    its node id shows it; ``base_dir``: the directory ``@refs`` are relative to; ``rootpath``:
    pytest's rootdir, which paths in messages are shown relative to.
    """

    test: str
    file: str
    base_dir: Path
    rootpath: Path | None = None

    def fail(self, marker: str, problem: str) -> NoReturn:
        raise MarkerError(test=self.test, marker=marker, file=self.file, problem=problem)

    def show(self, path: Path) -> str:
        normalized = Path(os.path.normpath(path))
        if self.rootpath is not None:
            try:
                return normalized.relative_to(self.rootpath).as_posix()
            except ValueError:
                pass
        return str(normalized)


def where_of(node: pytest.Item, test_file: Path) -> Where:
    """The :class:`Where` of a test item (or of ``metafunc.definition``) defined in ``test_file``."""
    file_part, sep, test_part = node.nodeid.partition("::")
    rootpath: Path | None = getattr(getattr(node, "config", None), "rootpath", None)
    return Where(
        test=test_part if sep else node.name,
        file=file_part or str(test_file),
        base_dir=Path(test_file).parent,
        rootpath=rootpath,
    )


def checked(where: Where, marker: str, parse: Callable[..., _T], *args: Any) -> _T:
    """Run ``parse(*args)``; any problem becomes a MarkerError naming test, marker and file."""
    try:
        return parse(*args)
    except Invalid as exc:
        where.fail(marker, str(exc))
    except RecursionError:
        where.fail(marker, "the value nests too deeply")


def _first_line(definition: Any) -> int:
    """The 1-based line where a test function starts (its first decorator: where its markers are)."""
    code = getattr(getattr(definition, "obj", None), "__code__", None)
    if code is not None:
        return int(code.co_firstlineno)
    location = getattr(definition, "location", None)
    return int(location[1]) + 1 if location and location[1] is not None else 0


class CollectionProblems:
    """Every marker mistake found while a module (or class) is collected, reported at once as that
    collector's collection error, one line each: ``file:line: `` and the ``MarkerError`` text.

    A mistake stops nothing else: the other tests' markers are still checked (a failing module's
    classes too), so one collection run shows them all. The collector's tests are not run (its
    report has no items).
    """

    def __init__(self) -> None:
        self._open: list[list[str]] = []  # one list per collector being collected, innermost last

    @classmethod
    def install(cls, config: pytest.Config) -> CollectionProblems:
        """Create one for ``config``, register its hook and keep it where ``report_marker_problem``
        finds it."""
        problems = cls()
        config.stash[_PROBLEMS] = problems
        config.pluginmanager.register(problems, "scriptum-marker-problems")
        return problems

    def add(self, definition: Any, error: MarkerError) -> bool:
        """Record ``error`` of the test ``definition``; False outside a collection (then raise it)."""
        if not self._open:
            return False
        line = f"{error.file}:{_first_line(definition)}: {error}"
        if line not in self._open[-1]:
            self._open[-1].append(line)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        self._open.append([])
        try:
            report = yield
            if self._open[-1] and report.passed:
                self._check_classes(report.result or [])
        finally:
            found = self._open.pop()
        if found:
            count = f"{len(found)} marker mistake{'s' if len(found) > 1 else ''}"
            text = "\n".join([f"{count} in {collector.nodeid or collector.name}:", *found])
            if report.failed and report.longrepr is not None:
                text += "\n\n" + str(report.longrepr)
            report.outcome = "failed"
            report.longrepr = text
            report.result = []
        return report


    def _check_classes(self, nodes: list[Any]) -> None:
        # The module's report fails, so pytest will not collect its classes: check their markers
        # now, so the one report lists every mistake of the file.
        for node in nodes:
            if isinstance(node, pytest.Class):
                try:
                    children = list(node.collect())
                except Exception:  # the class's own collection error is not ours to report
                    continue
                self._check_classes(children)


_PROBLEMS = pytest.StashKey[CollectionProblems]()


def report_marker_problem(config: pytest.Config, definition: Any, error: MarkerError) -> bool:
    """Record a marker mistake found at collection; False when it must be raised instead (no
    ``CollectionProblems`` installed, or no collector being collected)."""
    problems = config.stash.get(_PROBLEMS, None)
    return problems is not None and problems.add(definition, error)
