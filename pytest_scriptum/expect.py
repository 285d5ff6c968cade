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
  output paths (JSON Pointers), a tolerance at those paths only. ``|expected - actual| <= tol``
  with a few ulps of slack so that a tolerance of ``0.1`` accepts ``1.1`` against ``1.0``
  despite float rounding.
* ``schema``: JSON Schema validation, one mismatch per validation error at its path, by the
  validator of the schema's ``$schema`` (Draft 2020-12 when it names none) with its format checker:
  every ``format`` is asserted (jsonschema's ``format-nongpl`` checkers are dependencies of the
  plugin), and a ``format`` no installed checker knows is the test's mistake, never ignored.
  ``"declared"`` uses the JSON Schema of the version's declared output contract
  (``ScriptContract.outputs``, mapped by ``pytest_scriptum.contract_schema``).
* ``regex``: the value at each output path must be a string that the pattern matches in full.

Regexes are bounded in time. Marker patterns and the schema keywords that match regexes
(``pattern``, ``patternProperties``, ``additionalProperties``' use of the latter) run on the
``regex`` engine (``re`` syntax, its VERSION0) with its ``timeout``: one :func:`check` spends at
most :data:`REGEX_TIME_BOUND_S` seconds matching, all patterns together. jsonschema's own keywords
call ``re.search``, which cannot be interrupted, so they are replaced (``validators.extend``);
``unevaluatedProperties`` next to ``patternProperties`` would still call ``re`` and is refused.

The test's own mistakes raise :class:`ExpectationError` instead of being reported as mismatches: a
schema that is not valid, a ``$ref`` that cannot be resolved (nothing is fetched from the network),
a ``format`` nothing checks, a pattern the engine cannot compile or that runs past its time bound.
:func:`usable_validator` finds every one of them that can be found without an output, so the
marker parser reports them at collection; what remains surfaces while checking.

Paths are JSON Pointers (RFC 6901), the notation the ``approx`` and ``regex`` keys are written in
(``pytest_scriptum.spec.parse_path``): ``""`` (the whole output, shown as ``(whole output)`` in
the failure text), ``/totals/amount``, ``/lines/1/sku``, ``/odd key``, ``/a~1b`` (the key
``a/b``); a status mismatch has the path ``status``.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import enum
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urljoin

from pytest_scriptum.spec import UNSET, BoundedPattern, Expectation, parse_path, pointer

if TYPE_CHECKING:
    # Imported on first use (_load_schema_engine, compile_pattern): most expectations compare an
    # output and need neither, and jsonschema with its format checkers (arrow, dateutil,
    # isoduration, webcolors, ...) plus referencing and regex hold about 6 MB resident in every
    # session process that checks one (issue 18, memory: benchmarks/README.md).
    import referencing
    import referencing.exceptions
    from jsonschema import FormatChecker
    from jsonschema import exceptions as jsonschema_exceptions
    from jsonschema import validators as jsonschema_validators
    from jsonschema.protocols import Validator
    from referencing.jsonschema import DRAFT202012, specification_with

__all__ = [
    "MISSING",
    "REGEX_TIME_BOUND_S",
    "ExpectationError",
    "Mismatch",
    "check",
    "compile_pattern",
    "format_failure",
    "json_diff",
    "render_path",
    "usable_validator",
]


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing.MISSING
"""``Mismatch.expected``/``actual`` when there is no value on that side (a missing or extra key)."""

_MAX_LINES: Final = 50
_MAX_REPR: Final = 80

_Segment = str | int
_Path = tuple[_Segment, ...]


@dataclass(frozen=True)
class Mismatch:
    """One way the thread result differs from the expectation."""

    path: str
    message: str
    expected: Any
    actual: Any


class ExpectationError(Exception):
    """The test's own mistake, found while checking an expectation: never the candidate's failure.

    A schema that is not a valid JSON Schema, a ``$ref`` that cannot be resolved, a ``format`` that
    no installed checker knows, a pattern the regex engine cannot compile, a pattern that ran past
    :data:`REGEX_TIME_BOUND_S`. The message says which and where. A mismatch is never raised.
    """


REGEX_TIME_BOUND_S: Final = 2.0
"""Seconds one :func:`check` may spend matching regexes, every pattern of the expectation and of
its schema together. Matching a pattern on data of a smoke output takes microseconds; past this
the pattern backtracks catastrophically (nested quantifiers such as ``(a|aa)+$``)."""

# The deadline of the check in progress: jsonschema's keyword functions cannot be given an argument.
_DEADLINE: Final = contextvars.ContextVar[float]("scriptum_regex_deadline")


def compile_pattern(pattern: str) -> BoundedPattern:
    """``pattern`` compiled by the bounded engine (``regex``, ``re`` syntax: VERSION0).

    Why ``regex`` and not a linear-time engine (RE2): it supports the ``re`` syntax authors and
    JSON Schemas already use (backreferences, lookaround) and interrupts a match at a timeout;
    RE2 would refuse those patterns. Raises ValueError with the engine's message.
    """
    import regex  # here, not at the top: see the TYPE_CHECKING block

    try:
        return BoundedPattern(pattern, regex.compile(pattern, regex.VERSION0))
    except (regex.error, OverflowError, RecursionError, ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None


@contextlib.contextmanager
def _time_bound() -> Iterator[None]:
    token = _DEADLINE.set(time.monotonic() + REGEX_TIME_BOUND_S)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _matches(pattern: str | BoundedPattern, subject: str, *, full: bool, what: str) -> bool:
    """Whether ``pattern`` matches ``subject`` (in full, or anywhere like ``re.search``), within
    what is left of the check's time bound. Raises ExpectationError past it or on a bad pattern."""
    text = pattern if isinstance(pattern, str) else pattern.pattern
    if isinstance(pattern, str):
        try:
            pattern = compile_pattern(pattern)
        except ValueError as exc:
            raise ExpectationError(f"{what}: bad regex {text!r}: {exc}") from None
    deadline = _DEADLINE.get(None)
    left = REGEX_TIME_BOUND_S if deadline is None else deadline - time.monotonic()
    timeout = max(left, 0.001)  # an exhausted bound still gets a last, immediate try
    try:
        found = (
            pattern.compiled.fullmatch(subject, timeout=timeout)
            if full
            else pattern.compiled.search(subject, timeout=timeout)
        )
    except TimeoutError:
        raise ExpectationError(
            f"{what}: matching {text!r} against a {len(subject)}-character string ran past the "
            f"{REGEX_TIME_BOUND_S:g}s bound of regex matching (the pattern backtracks catastrophically, "
            "e.g. nested quantifiers): rewrite the pattern"
        ) from None
    return found is not None


# --- JSON Schema: the keywords that match regexes, on the bounded engine ------------------------
# Same behaviour and messages as jsonschema's own (jsonschema/_keywords.py), which call re.search.


def _pattern(validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _matches(
        pattern, instance, full=False, what="schema keyword 'pattern'"
    ):
        yield jsonschema_exceptions.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _matches(pattern, key, full=False, what="schema keyword 'patternProperties'"):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key
        for key in instance
        if key not in properties
        and not any(_matches(p, key, full=False, what="schema keyword 'patternProperties'") for p in patterns)
    ]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            listed = ", ".join(repr(each) for each in sorted(patterns))
            yield jsonschema_exceptions.ValidationError(
                f"{joined} {verb} not match any of the regexes: {listed}"
            )
        else:
            names = ", ".join(repr(each) for each in sorted(extras, key=str))
            verb = "was" if len(extras) == 1 else "were"
            yield jsonschema_exceptions.ValidationError(
                f"Additional properties are not allowed ({names} {verb} unexpected)"
            )


_BOUNDED_KEYWORDS: Final = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}
_BOUNDED: dict[type[Validator], type[Validator]] = {}


def _unchecked_format(validator: Any, fmt: Any, instance: Any, schema: Mapping[str, Any]) -> None:
    checker = validator.format_checker
    if checker is not None and isinstance(fmt, str) and fmt not in checker.checkers:
        raise ExpectationError(_no_checker(fmt, checker.checkers))


def _no_checker(fmt: str, known: Mapping[str, Any]) -> str:
    return (
        f"format {fmt!r}: no installed format checker knows it, so it would never be asserted "
        f"(checked formats: {', '.join(sorted(known))})"
    )


def _bounded_class(base: type[Validator]) -> type[Validator]:
    """``base`` with the regex keywords on the bounded engine and unknown formats refused."""
    if base not in _BOUNDED:
        original_format = base.VALIDATORS.get("format")

        def format_keyword(
            validator: Any, fmt: Any, instance: Any, schema: Mapping[str, Any]
        ) -> Iterator[Any]:
            _unchecked_format(validator, fmt, instance, schema)
            if original_format is not None:
                yield from original_format(validator, fmt, instance, schema)

        keywords: dict[str, Any] = {k: f for k, f in _BOUNDED_KEYWORDS.items() if k in base.VALIDATORS}
        keywords["format"] = format_keyword
        # types-jsonschema leaves extend's signature untyped; it returns a validator class
        _BOUNDED[base] = jsonschema_validators.extend(base, keywords)  # type: ignore[no-untyped-call]
    return _BOUNDED[base]


# --- JSON Schema: what can be found wrong without an output --------------------------------------

# Keywords whose value is a schema, a list of schemas, or an object of schemas (every draft's).
_ONE_SCHEMA: Final = frozenset(
    {
        "additionalProperties", "unevaluatedProperties", "items", "additionalItems", "unevaluatedItems",
        "contains", "propertyNames", "if", "then", "else", "not", "contentSchema",
    }
)  # fmt: skip
_SCHEMA_LISTS: Final = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})
_SCHEMA_MAPS: Final = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"}
)


def _nodes(
    schema: Any, base: str, at: tuple[str, ...]
) -> Iterator[tuple[Mapping[str, Any], str, tuple[str, ...]]]:
    """Every (sub)schema object with its base URI (``$id`` changes it) and its place in the schema."""
    if not isinstance(schema, Mapping):
        return
    if isinstance(schema.get("$id"), str):
        base = urljoin(base, schema["$id"])
    yield schema, base, at
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            for name, sub in value.items():
                yield from _nodes(sub, base, (*at, key, name))
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            for index, sub in enumerate(value):
                yield from _nodes(sub, base, (*at, key, str(index)))
        elif key in _ONE_SCHEMA:
            yield from _nodes(value, base, (*at, key))


def _where(at: tuple[str, ...]) -> str:
    return " at " + "".join(f"[{part!r}]" for part in at) if at else ""


def _load_schema_engine() -> None:
    """Bind jsonschema's and referencing's names in this module, on the first schema (idempotent:
    a repeated import is a dictionary look-up). Every path into the schema code (validators built
    here, their keyword functions, ``_check_schema``'s handlers) runs after ``usable_validator``."""
    global referencing, FormatChecker, jsonschema_exceptions, jsonschema_validators
    global DRAFT202012, specification_with
    import referencing
    import referencing.exceptions
    from jsonschema import FormatChecker
    from jsonschema import exceptions as jsonschema_exceptions
    from jsonschema import validators as jsonschema_validators
    from referencing.jsonschema import DRAFT202012, specification_with


def usable_validator(schema: Mapping[str, Any]) -> Validator:
    """A validator for ``schema`` (its ``$schema``'s draft, 2020-12 when none; its format checker;
    regexes bounded in time), after every check that needs no output.

    Raises ExpectationError naming the problem and where in the schema it is: an unknown
    ``$schema``, an invalid schema, a ``$ref`` that cannot be resolved (remote references are never
    fetched), a ``format`` no installed checker knows, a pattern the engine cannot compile,
    ``unevaluatedProperties`` next to ``patternProperties`` (jsonschema would match those with
    ``re``, which no bound can interrupt).
    """
    _load_schema_engine()
    document = dict(schema)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # an unknown $schema only warns in jsonschema
        try:
            base_class = jsonschema_validators.validator_for(document)  # none named: the latest, 2020-12
        except DeprecationWarning:
            raise ExpectationError(f"unknown $schema {_show(document.get('$schema'))}") from None
        except Exception as exc:  # jsonschema raises assorted errors on odd "$schema" values
            raise ExpectationError(f"unusable $schema: {type(exc).__name__}: {exc}") from None
    try:
        base_class.check_schema(document)
    except jsonschema_exceptions.SchemaError as exc:
        where = render_path(list(exc.path))
        raise ExpectationError(
            f"not a valid JSON Schema: {exc.message}" + (f" at {where}" if where else "")
        ) from None
    except Exception as exc:  # never let a jsonschema internal error escape as a traceback
        raise ExpectationError(f"not a valid JSON Schema: {type(exc).__name__}: {exc}") from None
    checker = _with_iri(base_class)
    specification = specification_with(str(document.get("$schema", "")), default=DRAFT202012)
    resource = specification.create_resource(document)
    root = resource.id() or ""
    try:
        resolver = referencing.Registry().with_resource(root, resource).crawl().resolver(base_uri=root)
    except Exception as exc:  # e.g. two subschemas claiming one $id
        raise ExpectationError(
            f"its $id resources cannot be registered: {type(exc).__name__}: {exc}"
        ) from None
    has_pattern_properties = has_unevaluated = False
    for node, base, at in _nodes(document, root, ()):
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                resolver.lookup(urljoin(base, ref))
            except referencing.exceptions.Unresolvable:
                raise ExpectationError(
                    f"$ref {ref!r}{_where(at)} cannot be resolved (a $ref must point into this schema; "
                    "nothing is fetched)"
                ) from None
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt not in checker.checkers:
            raise ExpectationError(_no_checker(fmt, checker.checkers) + _where(at))
        patterns = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), Mapping):
            has_pattern_properties = True
            patterns += list(node["patternProperties"])
        has_unevaluated = has_unevaluated or "unevaluatedProperties" in node
        for pattern in patterns:
            try:
                compile_pattern(pattern)
            except ValueError as exc:
                raise ExpectationError(f"bad regex {pattern!r}{_where(at)}: {exc}") from None
    if has_pattern_properties and has_unevaluated:
        raise ExpectationError(
            "unevaluatedProperties together with patternProperties is not supported: jsonschema "
            "matches those patterns with re, which cannot be bounded in time (use "
            "additionalProperties, or list the properties)"
        )
    return _bounded_class(base_class)(document, format_checker=checker)


# --- iri / iri-reference (RFC 3987) ------------------------------------------------------------
# jsonschema's own checker for these needs rfc3987-syntax, which builds a lark grammar while
# jsonschema is imported (measured: `import jsonschema` 0.67 s -> 6.5 s on a loaded 2-core machine),
# so in every reader of evidence too. RFC 3987 section 3.1 instead: an IRI maps to a URI by
# percent-encoding each non-ASCII character as UTF-8, and its grammar is RFC 3986's with ucschar
# added wherever unreserved is allowed (iprivate in the query only) — RFC 3986 allows pct-encoded
# wherever it allows unreserved. So a string is an IRI iff its non-ASCII characters are ucschar
# (iprivate: inside the query) and its mapping is a URI, which the installed uri checker
# (rfc3986-validator) decides.
_UCSCHAR: Final = (
    (0xA0, 0xD7FF),
    (0xF900, 0xFDCF),
    (0xFDF0, 0xFFEF),
    *((plane * 0x10000, plane * 0x10000 + 0xFFFD) for plane in range(1, 14)),
    (0xE1000, 0xEFFFD),
)
_IPRIVATE: Final = ((0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD))
_IRI_FORMATS: Final = (("iri", "uri"), ("iri-reference", "uri-reference"))
_WITH_IRI: dict[type[Validator], FormatChecker] = {}


def _within(codepoint: int, ranges: Sequence[tuple[int, int]]) -> bool:
    return any(low <= codepoint <= high for low, high in ranges)


def iri_to_uri(text: str) -> str | None:
    """RFC 3987 section 3.1's mapping of an IRI (reference) to a URI (reference); None when a
    non-ASCII character is neither ucschar nor, inside the query, iprivate."""
    question, hash_ = text.find("?"), text.find("#")
    query_start = question if question != -1 and (hash_ == -1 or question < hash_) else -1
    query_end = hash_ if hash_ > query_start else len(text)
    mapped = []
    for index, char in enumerate(text):
        codepoint = ord(char)
        if codepoint < 0x80:
            mapped.append(char)
            continue
        if _within(codepoint, _IPRIVATE):
            if query_start == -1 or not query_start < index < query_end:
                return None
        elif not _within(codepoint, _UCSCHAR):
            return None
        mapped.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8")))
    return "".join(mapped)


def _with_iri(base: type[Validator]) -> FormatChecker:
    """``base``'s format checker, plus ``iri`` / ``iri-reference`` where it checks ``uri`` /
    ``uri-reference`` but not those."""
    if base not in _WITH_IRI:
        checker: FormatChecker = base.FORMAT_CHECKER
        known = checker.checkers
        missing = [(iri, uri) for iri, uri in _IRI_FORMATS if iri not in known and uri in known]
        if missing:
            extended = FormatChecker(())
            extended.checkers = dict(checker.checkers)
            for iri, uri in missing:
                extended.checks(iri)(_iri_check(extended, uri))
            checker = extended
        _WITH_IRI[base] = checker
    return _WITH_IRI[base]


def _iri_check(checker: FormatChecker, uri_format: str) -> Callable[[object], bool]:
    def check(instance: object) -> bool:
        if not isinstance(instance, str):
            return True  # formats constrain strings only, as every jsonschema checker does
        mapped = iri_to_uri(instance)
        return mapped is not None and checker.conforms(mapped, uri_format)

    return check


def render_path(segments: Sequence[_Segment]) -> str:
    """``("lines", 1, "sku")`` -> ``"/lines/1/sku"``: the JSON Pointer (``""`` for the whole output)."""
    return pointer(segments)


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
            self.by_path = {parse_path(path): float(tol) for path, tol in approx.items()}
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
    """Validate ``output``; a schema that cannot be used is the test's mistake (ExpectationError)."""
    declared_name = expect.schema == "declared"
    label = "the declared output schema" if declared_name else "the output schema"
    schema = declared if declared_name else expect.schema
    if schema is None:
        raise ExpectationError("schema='declared' but the version declares no output contract")
    if not isinstance(schema, Mapping):  # a declared schema comes from the platform: trust nothing
        raise ExpectationError(f"{label} is not a JSON object: {_show(schema)}")
    try:
        validator = usable_validator(schema)
    except ExpectationError as exc:
        raise ExpectationError(f"{label}: {exc}") from None
    try:
        errors = list(validator.iter_errors(output))
    except ExpectationError as exc:  # a regex past its bound, an unknown format met on the way
        raise ExpectationError(f"{label}: {exc}") from None
    except referencing.exceptions.Unresolvable as exc:
        raise ExpectationError(f"{label}: a $ref cannot be resolved: {type(exc).__name__}") from None
    except RecursionError:
        raise ExpectationError(f"{label} recurses without end (a $ref cycle)") from None
    except Exception as exc:  # anything but a validation result is no verdict on the candidate
        raise ExpectationError(f"could not validate against {label}: {type(exc).__name__}: {exc}") from None
    for error in errors:
        message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        expected = {str(error.validator): error.validator_value}
        found.add(tuple(error.absolute_path), f"schema: {message}", expected, error.instance)


def _walk(output: Any, segments: tuple[str, ...]) -> tuple[_Path, bool, Any]:
    """Follow a path's segments; returns the rendered-path segments, whether it exists, the value."""
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


def _check_regex(patterns: Mapping[str, BoundedPattern], output: Any, found: _Found) -> None:
    for written, pattern in patterns.items():
        path, exists, value = _walk(output, parse_path(written))
        wanted = f"a string matching {pattern.pattern!r}"
        if not exists:
            found.add(path, f"missing, expected {wanted}", pattern.pattern, MISSING)
        elif not isinstance(value, str):
            found.add(path, f"expected {wanted}, got {_kind(value)}", pattern.pattern, value)
        elif not _matches(pattern, value, full=True, what=f"regex for {render_path(path)!r}"):
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
    that ended in the wrong state is not worth comparing. Raises ExpectationError when the
    expectation itself is unusable (see the module's docstring): the test's error, not a mismatch.
    """
    if status != expect.status:
        message = f"expected {expect.status}, got {status}"
        if error:
            message += f": {error}"
        return [Mismatch("status", message, expect.status, status)]
    found = _Found()
    if expect.output is not UNSET:
        _compare(expect.output, output, (), expect.match == "exact", _Tolerance(expect.approx), found)
    with _time_bound():
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
        lines.append(f"  {mismatch.path or '(whole output)'}: {first}")
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
