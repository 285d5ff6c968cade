"""Expectation matchers for smoke thread results, and their readable diffs.

:func:`check` compares a thread's status and output with an :class:`~pytest_scriptum.spec.Expectation`
and returns *every* mismatch (sorted by path), :func:`format_failure` renders them in the spirit
of pytest's assertion diffs, :func:`json_diff` gives a unified diff for evidence attachments.

Matching rules:

* ``subset``: every key of an expected object must be in the actual object (extra actual keys are
  fine), recursively; lists must have the same length and match element-wise; scalars are equal.
  ``exact``: deep equality (extra keys are mismatches too).
* Numbers: ``int`` and ``float`` compare by value (``1 == 1.0``, as a protobuf ``Struct`` turns
  every number into a float) but ``bool`` is never a number (``True != 1``). A string never
  equals a number.
* ``approx`` as a number is an absolute tolerance for every numeric comparison; as a mapping of
  dotted paths, a tolerance at those paths only. ``|expected - actual| <= tol`` with a few ulps
  of slack so that a tolerance of ``0.1`` accepts ``1.1`` against ``1.0`` despite float rounding.
* ``schema``: JSON Schema validation (formats checked where jsonschema can), one mismatch per
  validation error at its path. ``"declared"`` uses the JSON Schema of the version's declared
  output contract (``ScriptContract.outputs``, mapped by ``pytest_scriptum.contract_schema``).
* ``regex``: the value at each dotted path must be a string that the pattern matches in full.

Paths read ``$`` (the whole output), ``$.totals.amount``, ``$.lines[1].sku``, ``$["odd key"]``;
a status mismatch has the path ``status``.
"""

from __future__ import annotations

import difflib
import enum
import json
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from jsonschema import exceptions as jsonschema_exceptions
from jsonschema import validators as jsonschema_validators

from pytest_scriptum.spec import UNSET, Expectation, parse_dotted_path

__all__ = ["MISSING", "Mismatch", "check", "format_failure", "json_diff", "render_path"]


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing.MISSING
"""``Mismatch.expected``/``actual`` when there is no value on that side (a missing or extra key)."""

_MAX_LINES: Final = 50
_MAX_REPR: Final = 80
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_Segment = str | int
_Path = tuple[_Segment, ...]


@dataclass(frozen=True)
class Mismatch:
    """One way the thread result differs from the expectation."""

    path: str
    message: str
    expected: Any
    actual: Any


def render_path(segments: Sequence[_Segment]) -> str:
    """``("lines", 1, "sku")`` -> ``"$.lines[1].sku"``."""
    parts = ["$"]
    for segment in segments:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif _IDENTIFIER.fullmatch(segment):
            parts.append(f".{segment}")
        else:
            parts.append(f"[{json.dumps(segment, ensure_ascii=False)}]")
    return "".join(parts)


def _sort_key(segments: Sequence[_Segment]) -> tuple[tuple[int, int, str], ...]:
    # list indexes sort numerically ([2] before [10]) and before object keys at the same depth
    return tuple((0, s, "") if isinstance(s, int) else (1, 0, s) for s in segments)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _is_index(segment: str) -> bool:
    return segment.isascii() and segment.isdigit()


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    return _show(value)


class _Found:
    """Collects mismatches with a structured path for sorting."""

    def __init__(self) -> None:
        self.items: list[tuple[_Path, Mismatch]] = []

    def add(self, path: _Path, message: str, expected: Any, actual: Any) -> None:
        self.items.append((path, Mismatch(render_path(path), message, expected, actual)))

    def sorted(self) -> list[Mismatch]:
        return [mismatch for _, mismatch in sorted(self.items, key=lambda item: _sort_key(item[0]))]


class _Tolerance:
    def __init__(self, approx: float | Mapping[str, float] | None) -> None:
        self.everywhere: float | None = None
        self.by_path: dict[tuple[str, ...], float] = {}
        if isinstance(approx, Mapping):
            self.by_path = {parse_dotted_path(path): float(tol) for path, tol in approx.items()}
        elif approx is not None:
            self.everywhere = float(approx)

    def at(self, path: _Path) -> float | None:
        if self.by_path:
            return self.by_path.get(tuple(str(segment) for segment in path))
        return self.everywhere


def _numbers_match(expected: float, actual: float, tolerance: float | None) -> bool:
    if tolerance is None:
        return expected == actual
    if isinstance(expected, int) and isinstance(actual, int):
        return abs(expected - actual) <= tolerance  # exact: big ints never pass through floats
    try:
        difference = abs(expected - actual)
        # a few ulps of slack: 1.1 - 1.0 is 0.10000000000000009, which a tolerance of 0.1 must accept
        slack = 4 * sys.float_info.epsilon * max(abs(expected), abs(actual))
    except OverflowError:  # a huge int against a float: not within any finite tolerance
        return False
    return difference <= tolerance + slack


def _compare(
    expected: Any, actual: Any, path: _Path, exact: bool, tolerance: _Tolerance, found: _Found
) -> None:
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            found.add(path, f"expected an object, got {_kind(actual)}", expected, actual)
            return
        for key, value in expected.items():
            if key in actual:
                _compare(value, actual[key], (*path, key), exact, tolerance, found)
            else:
                found.add((*path, key), f"missing key, expected {_show(value)}", value, MISSING)
        if exact:
            for key, value in actual.items():
                if key not in expected:
                    found.add((*path, key), f"unexpected key, got {_show(value)}", MISSING, value)
        return
    if isinstance(expected, list):
        if not isinstance(actual, list):
            found.add(path, f"expected {_kind(expected)}, got {_kind(actual)}", expected, actual)
            return
        if len(expected) != len(actual):
            found.add(path, f"expected {_kind(expected)}, got {len(actual)}", expected, actual)
        for index, (item_expected, item_actual) in enumerate(zip(expected, actual, strict=False)):
            _compare(item_expected, item_actual, (*path, index), exact, tolerance, found)
        return
    if _is_number(expected) and _is_number(actual):
        tol = tolerance.at(path)
        if not _numbers_match(expected, actual, tol):
            within = "" if tol is None else f" ± {tol:g}"
            found.add(path, f"expected {expected!r}{within}, got {actual!r}", expected, actual)
        return
    if type(expected) is not type(actual):
        found.add(path, f"expected {_show(expected)}, got {_kind(actual)}", expected, actual)
        return
    if expected != actual:
        found.add(path, f"expected {_show(expected)}, got {_show(actual)}", expected, actual)


def _check_schema(
    expect: Expectation, output: Any, declared: Mapping[str, Any] | None, found: _Found
) -> None:
    schema = declared if expect.schema == "declared" else expect.schema
    if schema is None:
        found.add((), "schema='declared' but the version declares no output contract", "declared", None)
        return
    if not isinstance(schema, Mapping):  # a declared schema comes from the platform: trust nothing
        found.add((), f"the output schema is not a JSON object: {_show(schema)}", schema, output)
        return
    try:
        schema_dict = dict(schema)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # an unknown $schema falls back to latest
            validator_class = jsonschema_validators.validator_for(schema_dict)
        validator_class.check_schema(schema_dict)
        validator = validator_class(schema_dict, format_checker=validator_class.FORMAT_CHECKER)
        errors = list(validator.iter_errors(output))
    except jsonschema_exceptions.SchemaError as exc:
        found.add((), f"the output schema is not a valid JSON Schema: {exc.message}", schema, output)
        return
    except Exception as exc:  # e.g. an unresolvable $ref: report it as a mismatch, not a plugin crash
        found.add(
            (), f"could not validate against the output schema: {type(exc).__name__}: {exc}", schema, output
        )
        return
    for error in errors:
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        expected = {str(error.validator): error.validator_value}
        found.add(tuple(error.absolute_path), f"schema: {message}", expected, error.instance)


def _walk(output: Any, segments: tuple[str, ...]) -> tuple[_Path, bool, Any]:
    """Follow a dotted path; returns the rendered-path segments, whether it exists, the value."""
    path: list[_Segment] = []
    value = output
    for position, segment in enumerate(segments):
        if isinstance(value, dict) and segment in value:
            path.append(segment)
            value = value[segment]
        elif (
            isinstance(value, list) and segment.isascii() and segment.isdigit() and int(segment) < len(value)
        ):
            path.append(int(segment))
            value = value[int(segment)]
        else:
            # the missing part: an index-like segment reads as an index, except where an object is
            rest: list[_Segment] = [
                segment if isinstance(value, dict) or not _is_index(segment) else int(segment)
            ]
            rest += [int(s) if _is_index(s) else s for s in segments[position + 1 :]]
            return (*path, *rest), False, None
    return tuple(path), True, value


def _check_regex(patterns: Mapping[str, re.Pattern[str]], output: Any, found: _Found) -> None:
    for dotted, pattern in patterns.items():
        path, exists, value = _walk(output, parse_dotted_path(dotted))
        wanted = f"a string matching {pattern.pattern!r}"
        if not exists:
            found.add(path, f"missing, expected {wanted}", pattern.pattern, MISSING)
        elif not isinstance(value, str):
            found.add(path, f"expected {wanted}, got {_kind(value)}", pattern.pattern, value)
        elif pattern.fullmatch(value) is None:
            found.add(path, f"expected {wanted}, got {_show(value)}", pattern.pattern, value)


def check(
    expect: Expectation,
    *,
    status: str,
    output: Any,
    error: str,
    declared_schema: Mapping[str, Any] | None,
) -> list[Mismatch]:
    """Every way the thread result differs from ``expect``, sorted by path; empty when it matches.

    A status mismatch is reported alone (with the thread's error text): the output of a thread
    that ended in the wrong state is not worth comparing.
    """
    if status != expect.status:
        message = f"expected {expect.status}, got {status}"
        if error:
            message += f": {error}"
        return [Mismatch("status", message, expect.status, status)]
    found = _Found()
    if expect.output is not UNSET:
        _compare(expect.output, output, (), expect.match == "exact", _Tolerance(expect.approx), found)
    if expect.schema is not None:
        _check_schema(expect, output, declared_schema, found)
    if expect.regex:
        _check_regex(expect.regex, output, found)
    return found.sorted()


def format_failure(mismatches: Sequence[Mismatch], *, script: str, version: int, thread_id: str) -> str:
    """A readable failure message: a header naming script, version and thread, one line per mismatch."""
    lines = [f"smoke expectation failed: {script} v{version}, thread {thread_id}"]
    for mismatch in mismatches[:_MAX_LINES]:
        first, *rest = mismatch.message.splitlines() or [""]
        lines.append(f"  {mismatch.path}: {first}")
        lines.extend(f"      {line}" for line in rest)
    if len(mismatches) > _MAX_LINES:
        lines.append(f"  ... and {len(mismatches) - _MAX_LINES} more mismatches")
    if not mismatches:
        lines.append("  (no mismatches recorded)")
    return "\n".join(lines)


def _pretty(value: Any) -> str:
    def fallback(obj: Any) -> str:
        return repr(obj)

    try:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=fallback)
    except TypeError:  # keys of mixed types cannot be sorted
        return json.dumps(value, indent=2, ensure_ascii=False, default=fallback)
    except ValueError:  # a circular structure: not JSON, show it as Python sees it
        return repr(value)


def _project(expected: Any, actual: Any) -> Any:
    """``actual`` reduced to the parts a subset match looks at."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {key: _project(expected[key], value) for key, value in actual.items() if key in expected}
    if isinstance(expected, list) and isinstance(actual, list):
        head = [_project(e, a) for e, a in zip(expected, actual, strict=False)]
        return head + actual[len(expected) :]
    return actual


def json_diff(expected: Any, actual: Any, *, subset: bool = False) -> str:
    """Unified diff of pretty-printed JSON (``-`` expected, ``+`` actual); empty when equal.

    With ``subset=True`` keys of ``actual`` that ``expected`` does not mention are left out,
    so the diff shows only what a subset match compared.
    """
    if subset:
        actual = _project(expected, actual)
    before = _pretty(expected).splitlines()
    after = _pretty(actual).splitlines()
    if before == after:
        return ""
    return "\n".join(difflib.unified_diff(before, after, "expected", "actual", lineterm=""))
