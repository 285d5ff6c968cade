"""A test's markers -> :class:`~pytest_scriptum.spec.ItemMarkers`, parsed once per node.

:func:`item_markers` is the one parse: the closest marker of each kind (function > class > module;
a class's own mark beats those it inherits from its base classes) into the test's options and
smoke spec, cached in the node's stash, failures included, so later calls (setup, reports,
evidence) cost a lookup. :func:`validate_definition` runs at collection on ``metafunc.definition``:
it checks every marker of the test, inherited and overridden ones too, rejects a marker applied
twice to the function, loads the ``smoke_cases`` files and parses the definition itself through
the same function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import pytest

from pytest_scriptum.markers.arguments import expectation_from, glob_from, input_from, options_from
from pytest_scriptum.markers.cases import case_of, load_cases
from pytest_scriptum.markers.problems import MarkerError, Where, checked, where_of
from pytest_scriptum.spec import Expectation, ItemMarkers, ScriptumOptions, SmokeCase, SmokeSpec

__all__ = [
    "MARKER_NAMES",
    "PARSED_KEY",
    "forget_parsed",
    "item_markers",
    "scriptum_options",
    "smoke_spec",
    "validate_definition",
]

_T = TypeVar("_T")

# marker name -> its parser (the mark, where it is) -> the parsed value
_PARSERS: Final[Mapping[str, Callable[[pytest.Mark, Where], Any]]] = {
    "scriptum": lambda mark, _where: options_from(mark),
    "smoke_input": input_from,
    "smoke_expect": expectation_from,
    "smoke_cases": lambda mark, _where: glob_from(mark),
}
MARKER_NAMES: Final = tuple(_PARSERS)
"""The plugin's markers: ``scriptum``, ``smoke_input``, ``smoke_expect``, ``smoke_cases``."""

_EXPECT_ALONE: Final = "needs smoke_input or smoke_cases on the same test (nothing would run)"
_BOTH: Final = "a test cannot carry both smoke_input and smoke_cases; use one"


@dataclass(frozen=True)
class _Parsed:
    """One node's parse: each part, or the MarkerError that part raised (raised again on use), so
    the options of a test stay readable when only its smoke arguments are wrong."""

    options: ScriptumOptions | MarkerError
    spec: SmokeSpec | MarkerError | None


PARSED_KEY: Final = pytest.StashKey[_Parsed]()
"""Where :func:`item_markers` keeps a node's parse (``node.stash``); read it through the functions."""


def _own(node: pytest.Item, name: str) -> list[pytest.Mark]:
    return [mark for owner, mark in node.iter_markers_with_node(name) if owner is node]


def _closest(node: pytest.Item, name: str) -> pytest.Mark | None:
    """The closest ``name`` marker: function > class > module, like ``node.get_closest_marker``,
    except that a class's own mark beats those it inherits from base classes (pytest lists
    inherited class marks first)."""
    closest: pytest.Mark | None = None
    closest_owner: object = None
    for owner, mark in node.iter_markers_with_node(name):
        if closest is not None and owner is not closest_owner:
            break
        if closest is None or isinstance(owner, pytest.Class):
            closest, closest_owner = mark, owner
    return closest


class _Reader:
    """Parses one node's marks, each at most once (a file a mark names is read once)."""

    def __init__(self, node: pytest.Item, where: Where) -> None:
        self.node = node
        self.where = where
        self._done: dict[int, Any] = {}  # id(mark) -> parsed value or MarkerError; the marks outlive it

    def parse(self, name: str, mark: pytest.Mark) -> Any:
        if id(mark) not in self._done:
            try:
                self._done[id(mark)] = checked(self.where, name, _PARSERS[name], mark, self.where)
            except MarkerError as exc:
                self._done[id(mark)] = exc
        return _ok(self._done[id(mark)])

    def options(self) -> ScriptumOptions:
        """The closest ``scriptum`` marker's options, or the defaults."""
        mark = _closest(self.node, "scriptum")
        options: ScriptumOptions = ScriptumOptions() if mark is None else self.parse("scriptum", mark)
        return options

    def expectation(self) -> Expectation:
        """The closest ``smoke_expect`` marker's expectation, or the default one."""
        mark = _closest(self.node, "smoke_expect")
        expect: Expectation = Expectation() if mark is None else self.parse("smoke_expect", mark)
        return expect

    def reject_repeats(self, names: Iterable[str]) -> None:
        # Only on the function itself: a class legitimately holds the marks of its base classes too.
        for name in names:
            if len(_own(self.node, name)) > 1:
                self.where.fail(name, "applied more than once to the test function; apply it once")


def _ok(value: _T | MarkerError) -> _T:
    """``value``, or raise it when it is the MarkerError a parse kept."""
    if isinstance(value, MarkerError):
        raise value.with_traceback(None)
    return value


def _spec(reader: _Reader, options: ScriptumOptions | MarkerError) -> SmokeSpec | None:
    node, where = reader.node, reader.where
    case = case_of(node, where)
    input_mark = _closest(node, "smoke_input")
    has_cases = case is not None or _closest(node, "smoke_cases") is not None
    if input_mark is not None and has_cases:
        where.fail("smoke_cases", _BOTH)
    if case is not None:
        return SmokeSpec(input=case.input, expect=case.expect, options=_ok(options), case=case)
    if input_mark is None:
        if not has_cases and _own(node, "smoke_expect"):
            where.fail("smoke_expect", _EXPECT_ALONE)
        return None  # no smoke run (or a smoke_cases definition: its parametrized items run the cases)
    return SmokeSpec(
        input=reader.parse("smoke_input", input_mark), expect=reader.expectation(), options=_ok(options)
    )


def forget_parsed(node: pytest.Item) -> None:
    """Drop a test's parsed markers once nothing reads them again (after its last report): a
    session of thousands does not keep them to its end (DESIGN section 6). A later read parses
    them again (a rerun plugin's next attempt)."""
    if PARSED_KEY in node.stash:
        del node.stash[PARSED_KEY]


def _parsed(node: pytest.Item, reader: _Reader | None = None) -> _Parsed:
    parsed = node.stash.get(PARSED_KEY, None)
    if parsed is None:
        reader = reader or _Reader(node, where_of(node, node.path))
        options: ScriptumOptions | MarkerError
        spec: SmokeSpec | MarkerError | None
        try:
            options = reader.options()
        except MarkerError as exc:
            options = exc
        try:
            spec = _spec(reader, options)
        except MarkerError as exc:
            spec = exc
        parsed = node.stash[PARSED_KEY] = _Parsed(options=options, spec=spec)
    return parsed


def item_markers(item: pytest.Item) -> ItemMarkers:
    """Everything the plugin reads from a test's markers: its options and smoke spec.

    Parsed on the first call and kept in ``item.stash``; later calls (any phase, any caller) cost
    a lookup. A ``smoke_cases`` item carries its :class:`SmokeCase` in
    ``item.callspec.params[CASE_PARAM]``. Raises :class:`MarkerError` (never anything else) on bad
    marker arguments, the same error on every call.
    """
    parsed = _parsed(item)
    return ItemMarkers(options=_ok(parsed.options), spec=_ok(parsed.spec))


def scriptum_options(node: pytest.Item) -> ScriptumOptions:
    """The closest ``scriptum`` marker's options (defaults without one), from :func:`item_markers`'
    parse. Raises :class:`MarkerError` only when the ``scriptum`` marker itself is wrong."""
    return _ok(_parsed(node).options)


def smoke_spec(item: pytest.Item) -> SmokeSpec | None:
    """The smoke spec of a collected item, or None when it declares no smoke_input and no case;
    from :func:`item_markers`' parse. Raises :class:`MarkerError` (never anything else)."""
    return _ok(_parsed(item).spec)


def validate_definition(definition: pytest.Item, test_file: Path) -> list[SmokeCase] | None:
    """Validate every scriptum/smoke marker of a test (inherited ones too) and load its cases.

    Called from ``pytest_generate_tests`` with ``metafunc.definition``. Returns the loaded cases
    when the test carries ``smoke_cases``, else None. Raises :class:`MarkerError` for the first
    mistake found, which names the test, the marker and the file.
    """
    reader = _Reader(definition, where_of(definition, test_file))
    reader.reject_repeats(MARKER_NAMES)
    for name in MARKER_NAMES:
        for mark in definition.iter_markers(name):
            reader.parse(name, mark)
    parsed = _parsed(definition, reader)
    _ok(parsed.options)
    _ok(parsed.spec)
    cases_mark = _closest(definition, "smoke_cases")
    if cases_mark is None:
        return None
    glob: str = reader.parse("smoke_cases", cases_mark)
    where = reader.where
    return checked(where, "smoke_cases", load_cases, glob, where, reader.expectation())
