"""Smoke markers: marker arguments -> validated, frozen smoke specs.

Every mistake is a :class:`MarkerError` whose text names the test, the marker and the test file,
so the plugin can report it at collection without a traceback from plugin internals.

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
* **Dotted paths** (``approx`` and ``regex`` keys): ``"totals.amount"`` or ``"lines.0.price"``;
  segments are separated by ``.``, an integer segment indexes a list, any segment names a key of
  an object (so a key ``"0"`` is reachable too). Keys that contain a dot cannot be addressed.
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

import enum
import functools
import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal, NoReturn, TypeVar, cast

import pytest
from jsonschema import exceptions as jsonschema_exceptions
from jsonschema import validators as jsonschema_validators

__all__ = [
    "ACCEPTED_EXPECT_KEYS",
    "CASE_PARAM",
    "DEFAULT_STATUS",
    "JSON_NULL",
    "MARKER_DOCS",
    "STATUSES",
    "UNSET",
    "Expectation",
    "MarkerError",
    "ScriptumOptions",
    "SmokeCase",
    "SmokeSpec",
    "parse_dotted_path",
    "scriptum_options",
    "smoke_spec",
    "validate_definition",
]


_T = TypeVar("_T")


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


class _JsonNull(enum.Enum):
    JSON_NULL = "JSON_NULL"

    def __repr__(self) -> str:
        return "JSON_NULL"


UNSET: Final = _Unset.UNSET
"""``Expectation.output`` when no expected output was given."""

JSON_NULL: Final = _JsonNull.JSON_NULL
"""Write ``smoke_expect(output=JSON_NULL)`` to expect a JSON ``null`` output."""

CASE_PARAM: Final = "_scriptum_case"
"""The argument name the plugin parametrizes ``smoke_cases`` tests on (values: :class:`SmokeCase`)."""

# The thread statuses a smoke run can end in (the platform's documented vocabulary): terminal, or
# PAUSED (an `ask` waiting for ResumeThread). PENDING and RUNNING never reach a test.
STATUSES: Final = ("COMPLETED", "FAILED", "PAUSED", "CANCELLED")
DEFAULT_STATUS: Final = "COMPLETED"
ACCEPTED_EXPECT_KEYS: Final = ("output", "match", "schema", "approx", "regex", "status")
_SCRIPTUM_KWARGS: Final = ("script", "timeout", "env", "critical", "serial")
_MAX_TIMEOUT_S: Final = 3600.0  # the platform refuses runs with a longer deadline
_CASE_KEYS: Final = ("id", "input", "expect")
_MAX_DEPTH: Final = 200

MARKER_DOCS: Final[tuple[str, ...]] = (
    "scriptum(script=None, *, timeout=None, env=True, critical=False, serial=False): the script "
    "under test (default --scriptum-script), a per-test thread deadline in seconds, env resolution, "
    "critical (a failure fails the gate whatever the pass rate) and serial (run the thread inline "
    "when the test runs instead of dispatching it early).",
    "smoke_input(value): run a thread pinned to the candidate version with this input: a JSON value, "
    "or '@path.json' relative to the test file ('@@x' is the literal string '@x').",
    "smoke_expect(output=None, *, match='subset', schema=None, approx=None, regex=None, "
    "status='COMPLETED'): what the smoke thread must return: expected output (or '@file.json'), "
    "match 'subset' or 'exact', a JSON Schema (dict, '@file.json' or 'declared': the version's "
    "declared output contract), approx tolerance (number or {dotted.path: tol}), regex "
    "{dotted.path: pattern} (full match), expected thread status (COMPLETED, FAILED, PAUSED or CANCELLED).",
    "smoke_cases(glob): one smoke test per JSON case file matching the glob (relative to the test "
    'file); a case file is {"id": ..., "input": ..., "expect": {same keys as smoke_expect}}.',
)


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


@dataclass(frozen=True)
class ScriptumOptions:
    """Arguments of the ``scriptum`` marker."""

    script: str | None = None
    timeout: float | None = None
    env: bool = True
    critical: bool = False
    serial: bool = False


@dataclass(frozen=True)
class Expectation:
    """What a smoke thread must produce (arguments of ``smoke_expect`` or a case's ``expect``)."""

    output: Any = UNSET
    match: Literal["subset", "exact"] = "subset"
    schema: Mapping[str, Any] | Literal["declared"] | None = None
    approx: float | Mapping[str, float] | None = None
    regex: Mapping[str, re.Pattern[str]] | None = None
    status: str = DEFAULT_STATUS


@dataclass(frozen=True)
class SmokeCase:
    """One case file of a ``smoke_cases`` glob."""

    id: str
    input: Any
    expect: Expectation
    path: Path


@dataclass(frozen=True)
class SmokeSpec:
    """What a marker-declared smoke test runs and expects."""

    input: Any
    expect: Expectation
    options: ScriptumOptions
    case: SmokeCase | None = None


class _Invalid(Exception):
    """A problem found while checking a value; becomes a MarkerError at the marker boundary."""


@dataclass(frozen=True)
class _Where:
    """Where a marker is being checked: for error messages and for resolving ``@file`` refs."""

    test: str
    file: str
    base_dir: Path
    rootpath: Path | None = field(default=None)

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


def _where(node: pytest.Item, test_file: Path) -> _Where:
    file_part, sep, test_part = node.nodeid.partition("::")
    rootpath: Path | None = getattr(getattr(node, "config", None), "rootpath", None)
    return _Where(
        test=test_part if sep else node.name,
        file=file_part or str(test_file),
        base_dir=Path(test_file).parent,
        rootpath=rootpath,
    )


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # a user object whose __repr__ breaks must not break the error message
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- JSON values -----------------------------------------------------------------------------


def _json_value(value: Any, path: str = "$", depth: int = 0, stack: frozenset[int] = frozenset()) -> Any:
    """Return a checked copy of ``value`` as plain JSON data (tuples become lists)."""
    if depth > _MAX_DEPTH:
        raise _Invalid(f"{path}: nested more than {_MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Invalid(f"{path}: {value!r} is not a JSON number (NaN and infinity are not JSON)")
        return float(value)
    if isinstance(value, (list, tuple, dict)):
        if id(value) in stack:
            raise _Invalid(f"{path}: the value contains itself (circular reference)")
        inner = stack | {id(value)}
        if isinstance(value, dict):
            result: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise _Invalid(f"{path}: object key {_short(key)} is not a string (JSON keys are)")
                result[key] = _json_value(item, f"{path}.{key}", depth + 1, inner)
            return result
        return [_json_value(item, f"{path}[{i}]", depth + 1, inner) for i, item in enumerate(value)]
    raise _Invalid(
        f"{path}: {type(value).__name__} {_short(value)} is not a JSON value "
        "(use dict, list, str, int, float, bool or None)"
    )


def _reject_constant(name: str) -> NoReturn:
    raise _Invalid(f"{name} is not valid JSON")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Invalid(f"duplicate object key {key!r}")
        result[key] = value
    return result


def _load_json_file(ref: str, where: _Where, what: str) -> Any:
    """Load ``@relative/path.json`` (``ref`` without the ``@``) relative to ``where.base_dir``."""
    if not ref:
        raise _Invalid(f"empty {what} file reference '@' (write '@relative/path.json')")
    path = where.base_dir / ref
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _Invalid(f"{what} file '{ref}' not found ({where.show(path)})") from None
    except IsADirectoryError:
        raise _Invalid(f"{what} file '{ref}' is a directory ({where.show(path)})") from None
    except UnicodeDecodeError as exc:
        raise _Invalid(f"{what} file {where.show(path)} is not UTF-8 text: {exc.reason}") from None
    except (OSError, ValueError) as exc:
        raise _Invalid(f"cannot read {what} file '{ref}' ({where.show(path)}): {exc}") from None
    return _parse_json_text(text, f"{what} file {where.show(path)}")


def _parse_json_text(text: str, label: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise _Invalid(f"{label} is not valid JSON: {problem}") from None
    except _Invalid as exc:
        raise _Invalid(f"{label} is not valid JSON: {exc}") from None
    except RecursionError:
        raise _Invalid(f"{label} nests too deeply to load") from None


def _value_or_file(value: Any, where: _Where, what: str) -> Any:
    """A JSON value, where a top-level ``"@path"`` string is a file ref and ``"@@x"`` means ``"@x"``."""
    if isinstance(value, str) and value.startswith("@"):
        if value.startswith("@@"):
            return value[1:]
        return _json_value(_load_json_file(value[1:], where, what))
    return _json_value(value)


# --- dotted paths ----------------------------------------------------------------------------

_DOTTED_HELP: Final = "paths are dotted keys like 'totals.amount' or 'lines.0.price'"


def parse_dotted_path(path: object) -> tuple[str, ...]:
    """Split ``"lines.0.price"`` into ``("lines", "0", "price")``; ValueError when malformed."""
    if not isinstance(path, str):
        raise ValueError(f"path {_short(path)} is not a string ({_DOTTED_HELP})")
    segments = tuple(path.split("."))
    if not path or any(not segment for segment in segments):
        raise ValueError(f"bad path {path!r}: empty segment ({_DOTTED_HELP})")
    return segments


def _checked_path(path: object, what: str) -> tuple[str, ...]:
    try:
        return parse_dotted_path(path)
    except ValueError as exc:
        raise _Invalid(f"{what}: {exc}") from None


def _lookup(value: Any, segments: tuple[str, ...]) -> tuple[bool, Any]:
    for segment in segments:
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and _is_index(segment) and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return False, None
    return True, value


# --- argument checks -------------------------------------------------------------------------


def _is_index(segment: str) -> bool:
    return segment.isascii() and segment.isdigit()


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite_float(value: object, what: str, *, positive: bool) -> float:
    bound = "a positive" if positive else "a non-negative"
    if not _is_number(value):
        raise _Invalid(f"{what} must be {bound} number, got {_short(value)}")
    try:
        number = float(cast(float, value))
    except OverflowError:
        raise _Invalid(f"{what} must be {bound} finite number, got {_short(value)}") from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise _Invalid(f"{what} must be {bound} finite number, got {_short(value)}")
    return number


def _check_schema(schema: Any, label: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise _Invalid(f"{label} must be a JSON Schema object, got {_short(schema)}")
    checked = cast(dict[str, Any], _json_value(schema))
    with warnings.catch_warnings():
        # An unknown "$schema" only warns in jsonschema; here it is a mistake worth an error.
        warnings.simplefilter("error", DeprecationWarning)
        try:
            validator = jsonschema_validators.validator_for(checked)
        except DeprecationWarning:
            raise _Invalid(f"{label}: unknown $schema {_short(checked.get('$schema'))}") from None
        except Exception as exc:  # jsonschema raises assorted errors on odd "$schema" values
            raise _Invalid(f"{label}: unusable $schema: {type(exc).__name__}: {exc}") from None
    try:
        validator.check_schema(checked)
    except jsonschema_exceptions.SchemaError as exc:
        at = "".join(f"[{part!r}]" for part in exc.path)
        problem = exc.message + (f" at {at}" if at else "")
        raise _Invalid(f"{label} is not a valid JSON Schema: {problem}") from None
    except Exception as exc:  # never let a jsonschema internal error escape as a traceback
        raise _Invalid(f"{label} is not a valid JSON Schema: {type(exc).__name__}: {exc}") from None
    return checked


def _expectation(values: Mapping[str, Any], where: _Where, *, origin: str) -> Expectation:
    """Check ``smoke_expect`` arguments (``origin`` "argument") or a case's ``expect`` ("key")."""
    for key in values:
        if key not in ACCEPTED_EXPECT_KEYS:
            raise _Invalid(f"unknown {origin} {_short(key)} (accepted: {', '.join(ACCEPTED_EXPECT_KEYS)})")

    raw_output = values.get("output")
    output: Any
    if raw_output is None:
        output = UNSET
    elif raw_output is JSON_NULL:
        output = None
    else:
        output = _value_or_file(raw_output, where, "output")

    match = values.get("match", "subset")
    if match not in ("subset", "exact"):
        raise _Invalid(f"match must be 'subset' or 'exact', got {_short(match)}")

    raw_schema = values.get("schema")
    schema: dict[str, Any] | Literal["declared"] | None
    if raw_schema is None:
        schema = None
    elif isinstance(raw_schema, str) and raw_schema == "declared":
        schema = "declared"
    elif isinstance(raw_schema, str):
        if not raw_schema.startswith("@") or raw_schema.startswith("@@"):
            raise _Invalid(f"schema must be a dict, '@file.json' or 'declared', got {_short(raw_schema)}")
        ref = raw_schema[1:]
        schema = _check_schema(_load_json_file(ref, where, "schema"), f"schema file '{ref}'")
    else:
        schema = _check_schema(raw_schema, "schema")

    approx = _approx(values.get("approx"), output)
    regex = _regex(values.get("regex"))

    status = values.get("status", DEFAULT_STATUS)
    if status not in STATUSES:
        raise _Invalid(f"status must be one of {', '.join(STATUSES)}, got {_short(status)}")

    return Expectation(
        output=output,
        match=cast(Literal["subset", "exact"], match),
        schema=schema,
        approx=approx,
        regex=regex,
        status=cast(str, status),
    )


def _approx(raw: Any, output: Any) -> float | dict[str, float] | None:
    if raw is None:
        return None
    if output is UNSET:
        raise _Invalid("approx needs an expected output (it is the tolerance for comparing output numbers)")
    if not isinstance(raw, dict):
        return _finite_float(raw, "approx", positive=False)
    tolerances: dict[str, float] = {}
    for path, tolerance in raw.items():
        segments = _checked_path(path, "approx")
        found, value = _lookup(output, segments)
        if not found:
            raise _Invalid(f"approx path {path!r} is not in the expected output")
        if not _is_number(value):
            raise _Invalid(f"approx path {path!r} leads to {_short(value)} there, not a number")
        tolerances[path] = _finite_float(tolerance, f"approx tolerance for {path!r}", positive=False)
    return tolerances


def _regex(raw: Any) -> dict[str, re.Pattern[str]] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _Invalid(f"regex must be a dict {{dotted.path: pattern}}, got {_short(raw)}")
    patterns: dict[str, re.Pattern[str]] = {}
    for path, pattern in raw.items():
        _checked_path(path, "regex")
        if not isinstance(pattern, str):
            raise _Invalid(f"regex pattern for {path!r} must be a string, got {_short(pattern)}")
        try:
            patterns[path] = re.compile(pattern)
        except (re.error, OverflowError, RecursionError, ValueError) as exc:
            raise _Invalid(f"bad regex for {path!r}: {exc}") from None
    return patterns


def _scriptum_from_mark(mark: pytest.Mark) -> ScriptumOptions:
    if len(mark.args) > 1:
        raise _Invalid(f"takes at most one positional argument (script), got {len(mark.args)}")
    for key in mark.kwargs:
        if key not in _SCRIPTUM_KWARGS:
            raise _Invalid(f"unknown argument {_short(key)} (accepted: {', '.join(_SCRIPTUM_KWARGS)})")
    if mark.args and "script" in mark.kwargs:
        raise _Invalid("script given both positionally and as a keyword")
    script = mark.args[0] if mark.args else mark.kwargs.get("script")
    if script is not None and (not isinstance(script, str) or not script):
        raise _Invalid(f"script must be a non-empty string, got {_short(script)}")
    timeout = mark.kwargs.get("timeout")
    if timeout is not None:
        timeout = _finite_float(timeout, "timeout", positive=True)
        if timeout > _MAX_TIMEOUT_S:
            raise _Invalid(
                f"timeout must be at most {_MAX_TIMEOUT_S:g} seconds (the platform's limit), got {timeout:g}"
            )
    flags: dict[str, bool] = {}
    for name, default in (("env", True), ("critical", False), ("serial", False)):
        value = mark.kwargs.get(name, default)
        if not isinstance(value, bool):
            raise _Invalid(f"{name} must be True or False, got {_short(value)}")
        flags[name] = value
    return ScriptumOptions(script=script, timeout=timeout, **flags)


def _input_from_mark(mark: pytest.Mark, where: _Where) -> Any:
    if mark.kwargs or len(mark.args) != 1:
        raise _Invalid("takes exactly one positional argument: the input value or '@file.json'")
    return _value_or_file(mark.args[0], where, "input")


def _expect_from_mark(mark: pytest.Mark, where: _Where) -> Expectation:
    if len(mark.args) > 1:
        raise _Invalid(f"takes at most one positional argument (output), got {len(mark.args)}")
    values = dict(mark.kwargs)
    if mark.args:
        if "output" in values:
            raise _Invalid("output given both positionally and as a keyword")
        values["output"] = mark.args[0]
    return _expectation(values, where, origin="argument")


def _glob_from_mark(mark: pytest.Mark) -> str:
    if mark.kwargs or len(mark.args) != 1:
        raise _Invalid("takes exactly one positional argument: a glob relative to the test file")
    glob = mark.args[0]
    if not isinstance(glob, str) or not glob:
        raise _Invalid(f"the glob must be a non-empty string, got {_short(glob)}")
    if Path(glob).is_absolute() or glob.startswith(("/", "\\")):
        raise _Invalid(f"the glob {glob!r} must be relative to the test file's directory")
    return glob


def _load_cases(glob: str, where: _Where, fallback: Expectation) -> list[SmokeCase]:
    try:
        paths = sorted(path for path in where.base_dir.glob(glob) if path.is_file())
    except (ValueError, NotImplementedError, OSError) as exc:
        raise _Invalid(f"bad glob {glob!r}: {exc}") from None
    if not paths:
        raise _Invalid(f"glob {glob!r} matched no files in {where.show(where.base_dir)}")
    cases: list[SmokeCase] = []
    seen: dict[str, Path] = {}
    for path in paths:
        label = f"case file {where.show(path)}"
        try:
            case = _load_case(path, where, fallback, label)
        except _Invalid as exc:
            problem = str(exc)
            raise _Invalid(problem if problem.startswith(label) else f"{label}: {problem}") from None
        if case.id in seen:
            first = where.show(seen[case.id])
            raise _Invalid(f"duplicate case id {case.id!r} in {first} and {where.show(path)}")
        seen[case.id] = path
        cases.append(case)
    return cases


def _load_case(path: Path, where: _Where, fallback: Expectation, label: str) -> SmokeCase:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _Invalid(f"{label} is not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise _Invalid(f"cannot read {label}: {exc}") from None
    data = _parse_json_text(text, label)
    if not isinstance(data, dict):
        raise _Invalid(f"must be a JSON object with keys id, input, expect; got {_short(data)}")
    unknown = sorted(key for key in data if key not in _CASE_KEYS)
    if unknown:
        raise _Invalid(f"unknown key {unknown[0]!r} (accepted: {', '.join(_CASE_KEYS)})")
    case_id = data.get("id")
    if not isinstance(case_id, str) or not case_id.strip():
        raise _Invalid(f"'id' must be a non-empty string, got {_short(case_id)}")
    if "input" not in data:
        raise _Invalid("'input' is required (write \"input\": null for a null input)")
    case_where = replace(where, base_dir=path.parent)
    case_input = _value_or_file(data["input"], case_where, "input")
    if "expect" in data:
        raw_expect = data["expect"]
        if not isinstance(raw_expect, dict):
            raise _Invalid(f"'expect' must be an object (smoke_expect's keys), got {_short(raw_expect)}")
        try:
            expect = _expectation(raw_expect, case_where, origin="key in 'expect'")
        except _Invalid as exc:
            raise _Invalid(f"expect: {exc}") from None
    else:
        expect = fallback
    return SmokeCase(id=case_id, input=case_input, expect=expect, path=path)


# --- node level ------------------------------------------------------------------------------


def _checked(where: _Where, marker: str, parse: Callable[..., _T], *args: Any) -> _T:
    """Run ``parse(*args)``; any problem becomes a MarkerError naming test, marker and file."""
    try:
        return parse(*args)
    except _Invalid as exc:
        where.fail(marker, str(exc))
    except RecursionError:
        where.fail(marker, "the value nests too deeply")


_EXPECT_ALONE: Final = "needs smoke_input or smoke_cases on the same test (nothing would run)"


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


def _reject_repeats(node: pytest.Item, where: _Where, names: Iterable[str]) -> None:
    # Only on the function itself: a class legitimately holds the marks of its base classes too.
    for name in names:
        if len(_own(node, name)) > 1:
            where.fail(name, "applied more than once to the test function; apply it once")


def scriptum_options(node: pytest.Item) -> ScriptumOptions:
    """The closest ``scriptum`` marker's options (function > class > module), validated."""
    where = _where(node, node.path)
    mark = _closest(node, "scriptum")
    if mark is None:
        return ScriptumOptions()
    return _checked(where, "scriptum", _scriptum_from_mark, mark)


def validate_definition(definition: pytest.Item, test_file: Path) -> list[SmokeCase] | None:
    """Validate every scriptum/smoke marker of a test (inherited ones too) and load its cases.

    Called from ``pytest_generate_tests`` with ``metafunc.definition``. Returns the loaded cases
    when the test carries ``smoke_cases``, else None. Raises :class:`MarkerError`.
    """
    where = _where(definition, test_file)
    names = ("scriptum", "smoke_input", "smoke_expect", "smoke_cases")
    _reject_repeats(definition, where, names)
    for mark in definition.iter_markers("scriptum"):
        _checked(where, "scriptum", _scriptum_from_mark, mark)
    for mark in definition.iter_markers("smoke_input"):
        _checked(where, "smoke_input", _input_from_mark, mark, where)
    for mark in definition.iter_markers("smoke_expect"):
        _checked(where, "smoke_expect", _expect_from_mark, mark, where)
    for mark in definition.iter_markers("smoke_cases"):
        _checked(where, "smoke_cases", _glob_from_mark, mark)
    has_input = _closest(definition, "smoke_input") is not None
    cases_mark = _closest(definition, "smoke_cases")
    if has_input and cases_mark is not None:
        where.fail("smoke_cases", "a test cannot carry both smoke_input and smoke_cases; use one")
    if _own(definition, "smoke_expect") and not has_input and cases_mark is None:
        where.fail("smoke_expect", _EXPECT_ALONE)
    if cases_mark is None:
        return None
    expect_mark = _closest(definition, "smoke_expect")
    fallback = Expectation()
    if expect_mark is not None:
        fallback = _checked(where, "smoke_expect", _expect_from_mark, expect_mark, where)
    glob = _checked(where, "smoke_cases", _glob_from_mark, cases_mark)
    return _checked(where, "smoke_cases", _load_cases, glob, where, fallback)


def smoke_spec(item: pytest.Item) -> SmokeSpec | None:
    """The smoke spec of a collected item, or None when it declares no smoke_input and no case.

    A ``smoke_cases`` item carries its :class:`SmokeCase` in ``item.callspec.params[CASE_PARAM]``.
    Raises :class:`MarkerError` (never anything else) on bad marker arguments.
    """
    where = _where(item, item.path)
    callspec = getattr(item, "callspec", None)
    params: Mapping[str, Any] = getattr(callspec, "params", None) or {}
    case = params.get(CASE_PARAM)
    if CASE_PARAM in params and not isinstance(case, SmokeCase):
        where.fail("smoke_cases", f"parameter {CASE_PARAM!r} holds {_short(case)}, not a loaded smoke case")
    input_mark = _closest(item, "smoke_input")
    if input_mark is None:
        if case is not None:
            return SmokeSpec(input=case.input, expect=case.expect, options=scriptum_options(item), case=case)
        if _own(item, "smoke_expect"):
            where.fail("smoke_expect", _EXPECT_ALONE)
        return None
    if case is not None:
        where.fail("smoke_cases", "a test cannot carry both smoke_input and smoke_cases; use one")
    options = scriptum_options(item)
    value = _checked(where, "smoke_input", _input_from_mark, input_mark, where)
    expect_mark = _closest(item, "smoke_expect")
    expect = Expectation()
    if expect_mark is not None:
        expect = _checked(where, "smoke_expect", _expect_from_mark, expect_mark, where)
    return SmokeSpec(input=value, expect=expect, options=options)
