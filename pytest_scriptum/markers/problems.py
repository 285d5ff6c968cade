"""Marker mistakes: :class:`MarkerError` (public) and the internal :class:`Invalid` it is made from.

Checks deep inside the parser raise :class:`Invalid` with the problem alone; :func:`checked` is the
boundary that turns it into a :class:`MarkerError` naming the test, the marker and the file, so a
mistake is reported at collection without a traceback from plugin internals.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

from pytest_scriptum.spec import short_repr

__all__ = ["Invalid", "MarkerError", "Where", "checked", "short", "where_of"]

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
