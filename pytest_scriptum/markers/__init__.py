"""Smoke markers: marker arguments -> validated, frozen smoke specs (:mod:`pytest_scriptum.spec`).

Every mistake is a :class:`MarkerError` whose text names the test, the marker and the test file,
so the plugin can report it at collection without a traceback from plugin internals.

The package by concern: ``problems`` (MarkerError and where a marker is), ``values`` (JSON values,
``@file`` references, output paths), ``arguments`` (one marker's arguments -> a spec record),
``cases`` (``smoke_cases`` files), ``nodes`` (a test's markers -> its options and spec, parsed
once per test). The records themselves live in :mod:`pytest_scriptum.spec`; their constructors'
signatures are the markers' signatures and the one list of accepted keys.

Rules a smoke-suite author relies on:

* **JSON values.** ``smoke_input(value)`` and ``smoke_expect(output=...)`` take a JSON value:
  ``dict`` (string keys), ``list``, ``str``, ``int``, ``float``, ``bool`` or ``None``, checked
  recursively. Tuples are accepted and become lists (JSON has one array type). NaN and infinity
  are rejected (they are not JSON), as is anything else (sets, bytes, objects).
* **File references.** A top-level string ``"@relative/path.json"`` is read as JSON from that
  file, relative to the test file's directory (in a case file: relative to the case file).
  ``"@@x"`` is the escape for the literal string ``"@x"``; any other string is itself.
  Strings nested inside a value are never references. JSON files are strict: NaN/Infinity and
  duplicate object keys are errors.
* **Expecting JSON null.** ``output=None`` (the default) means *no expected output*, in a marker
  and in a case file alike. To expect a ``null`` output write ``output=JSON_NULL`` in Python, or
  ``output="@null.json"`` with a file containing ``null`` (the only way in a case file).
* **Output paths** (``approx`` and ``regex`` keys) are JSON Pointers (RFC 6901):
  ``"/totals/amount"``, ``"/lines/0/price"``; ``~1`` writes a ``/`` and ``~0`` a ``~`` inside a
  key, ``""`` is the whole output. An integer segment indexes a list, any segment names a key of
  an object (so a key ``"0"`` is reachable too). Failure messages print the same pointers. The
  dotted form of earlier releases (``"lines.0.price"``) is still read and shown as its pointer.
  ``approx`` paths must lead to a number in the expected output (otherwise the tolerance could
  never apply, which is a silent mistake).
* **Closest marker wins** (function > class > module; a class's own mark beats the ones it
  inherits from base classes) for ``scriptum``, ``smoke_input``, ``smoke_expect`` and
  ``smoke_cases``: no merging of arguments across levels. Every marker on a test, inherited ones
  included, is validated anyway; the same marker twice on one function is an error.
  ``smoke_expect`` applied to a test function itself needs ``smoke_input`` or ``smoke_cases``
  on that test; one inherited from a class or module is a default for the smoke tests below it
  and does not turn other tests into errors.
* **Case files** (``smoke_cases(glob)``): each matching file is a JSON object with keys ``id``
  (required, non-empty string, unique across the glob), ``input`` (required; ``null`` is a valid
  input) and ``expect`` (optional, same keys and rules as ``smoke_expect``; when absent the
  test's closest ``smoke_expect`` applies, else the default expectation).
"""

from __future__ import annotations

import inspect
from typing import Final

from pytest_scriptum.markers.arguments import keys_of
from pytest_scriptum.markers.cases import CASE_PARAM
from pytest_scriptum.markers.nodes import (
    MARKER_NAMES,
    PARSED_KEY,
    forget_parsed,
    item_markers,
    scriptum_options,
    smoke_spec,
    validate_definition,
)
from pytest_scriptum.markers.problems import CollectionProblems, MarkerError, report_marker_problem
from pytest_scriptum.spec import (
    DEFAULT_STATUS,
    JSON_NULL,
    STATUSES,
    UNSET,
    BoundedPattern,
    Expectation,
    ItemMarkers,
    ScriptumOptions,
    SmokeCase,
    SmokeSpec,
    parse_dotted_path,
    parse_path,
    pointer,
)

__all__ = [
    "ACCEPTED_EXPECT_KEYS",
    "CASE_PARAM",
    "DEFAULT_STATUS",
    "JSON_NULL",
    "MARKER_DOCS",
    "MARKER_NAMES",
    "PARSED_KEY",
    "STATUSES",
    "UNSET",
    "BoundedPattern",
    "CollectionProblems",
    "Expectation",
    "ItemMarkers",
    "MarkerError",
    "ScriptumOptions",
    "SmokeCase",
    "SmokeSpec",
    "forget_parsed",
    "item_markers",
    "parse_dotted_path",
    "parse_path",
    "pointer",
    "report_marker_problem",
    "scriptum_options",
    "smoke_spec",
    "validate_definition",
]

ACCEPTED_EXPECT_KEYS: Final = tuple(keys_of(Expectation))
"""The keys of ``smoke_expect`` and of a case's ``expect``: :class:`Expectation`'s parameters."""


def _signature(record: type) -> str:
    """``record``'s constructor written as its marker's signature, e.g. ``(script=None, *,
    timeout=None, ...)``: no annotations, and UNSET shown as None (what a marker writes for it)."""
    parameters = [
        parameter.replace(
            annotation=inspect.Parameter.empty,
            default=None if parameter.default is UNSET else parameter.default,
        )
        for parameter in inspect.signature(record).parameters.values()
    ]
    return str(inspect.Signature(parameters))


MARKER_DOCS: Final[tuple[str, ...]] = (
    f"scriptum{_signature(ScriptumOptions)}: the script under test (default --scriptum-script), "
    "a per-test thread deadline in seconds, env resolution, critical (a failure fails the gate "
    "whatever the pass rate), serial (run the thread inline when the test runs instead of "
    "dispatching it early), repeat (independent attempts of the case, default --scriptum-repeat), "
    "min_pass (passing attempts the case needs, default all) and advisory (run and reported, never "
    "gate evidence).",
    "smoke_input(value): run a thread pinned to the candidate version with this input: a JSON value, "
    "or '@path.json' relative to the test file ('@@x' is the literal string '@x').",
    f"smoke_expect{_signature(Expectation)}: what the smoke thread must return: expected output "
    "(or '@file.json'), match 'subset' or 'exact', a JSON Schema (dict, '@file.json' or 'declared': "
    "the version's declared output contract), approx tolerance (number or {'/json/pointer': tol}), "
    "regex {'/json/pointer': pattern} (full match), expected thread status (COMPLETED, FAILED, PAUSED or "
    "CANCELLED).",
    "smoke_cases(glob): one smoke test per JSON case file matching the glob (relative to the test "
    'file); a case file is {"id": ..., "input": ..., "expect": {same keys as smoke_expect}}.',
)
"""One ``markers`` ini line per marker (``pytest --markers``); the signatures are the records'."""
