"""Marker arguments -> spec records: ``scriptum``, ``smoke_input``, ``smoke_expect``, ``smoke_cases``.

A marker's arguments are bound to the signature of the record they build, the way a call would
bind them (:func:`bind`): ``scriptum(...)`` to :class:`~pytest_scriptum.spec.ScriptumOptions`,
``smoke_expect(...)`` and a case file's ``expect`` object to :class:`~pytest_scriptum.spec.Expectation`.
Those keyword-only signatures are the one list of accepted keys (as pytest_httpx builds its
options from ``httpx_mock`` marker keywords): an unknown key, a second positional or a value given
twice is the ``TypeError`` of the call, reported as an :class:`Invalid` that names the key and the
accepted ones. The bound values are then checked one by one and the record is built from them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, cast

import pytest

from pytest_scriptum._limits import MAX_REPEAT, MAX_THREAD_TIMEOUT_S
from pytest_scriptum.markers.problems import Invalid, Where, short
from pytest_scriptum.markers.values import (
    checked_path,
    is_number,
    json_value,
    load_json_file,
    lookup,
    value_or_file,
)
from pytest_scriptum.spec import (
    JSON_NULL,
    STATUSES,
    UNSET,
    BoundedPattern,
    Expectation,
    ScriptumOptions,
    pointer,
)

__all__ = [
    "bind",
    "expectation",
    "expectation_from",
    "finite_float",
    "glob_from",
    "input_from",
    "keys_of",
    "options_from",
]

_COUNTS: Final = ("no", "one", "two", "three")


def bind(
    record: type,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    what: str,
    supplied: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Bind ``args``/``kwargs`` to ``record``'s constructor as a call would; defaults applied.

    ``what`` names a key in problems ("argument", "key in 'expect'"). ``supplied`` are parameters
    the parser fills itself (a case's ``path``): the author may not give them. Parameters without
    a default are absent from the result when not given (the caller words what is missing).
    Returns ``{parameter: raw value}`` in signature order, without ``supplied``. Raises Invalid.
    """
    signature = inspect.signature(record)
    given = supplied or {}
    try:
        bound = signature.bind_partial(*args, **kwargs, **given)
    except TypeError as exc:  # Python's own check of the call: the key list is the signature's
        raise Invalid(_unbound(signature, args, kwargs, given, what, exc)) from None
    bound.apply_defaults()
    return {name: value for name, value in bound.arguments.items() if name not in given}


def keys_of(record: type, *, supplied: Collection[str] = ()) -> list[str]:
    """The keys an author may give ``record`` (its parameters but ``supplied``), in signature order."""
    return [name for name in inspect.signature(record).parameters if name not in supplied]


def _unbound(
    signature: inspect.Signature,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    supplied: Mapping[str, Any],
    what: str,
    error: TypeError,
) -> str:
    """Why ``args``/``kwargs`` did not bind, in the author's terms."""
    positional = [p.name for p in signature.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    accepted = [name for name in signature.parameters if name not in supplied]  # keys_of, signature in hand
    if len(args) > len(positional):
        count = _COUNTS[len(positional)] if len(positional) < len(_COUNTS) else str(len(positional))
        return f"takes at most {count} positional argument ({', '.join(positional)}), got {len(args)}"
    stray = next((name for name in kwargs if name not in accepted), None)
    if stray is not None:
        return f"unknown {what} {short(stray)} (accepted: {', '.join(accepted)})"
    twice = next((name for name in positional[: len(args)] if name in kwargs), None)
    if twice is not None:
        return f"{twice} given both positionally and as a keyword"
    return str(error)


def finite_float(value: object, what: str, *, positive: bool) -> float:
    """``value`` as a finite float >= 0 (> 0 when ``positive``); bools are not numbers."""
    bound = "a positive" if positive else "a non-negative"
    if not is_number(value):
        raise Invalid(f"{what} must be {bound} number, got {short(value)}")
    try:
        number = float(cast(float, value))
    except OverflowError:
        raise Invalid(f"{what} must be {bound} finite number, got {short(value)}") from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise Invalid(f"{what} must be {bound} finite number, got {short(value)}")
    return number


# --- scriptum ----------------------------------------------------------------------------------


def options_from(mark: pytest.Mark) -> ScriptumOptions:
    """``@pytest.mark.scriptum(script=None, *, timeout=None, env=True, critical=False, serial=False,
    repeat=None, min_pass=None, advisory=False)``."""
    args = bind(ScriptumOptions, mark.args, mark.kwargs, what="argument")
    script = args.pop("script")
    if script is not None and (not isinstance(script, str) or not script):
        raise Invalid(f"script must be a non-empty string, got {short(script)}")
    timeout = args.pop("timeout")
    if timeout is not None:
        timeout = finite_float(timeout, "timeout", positive=True)
        if timeout > MAX_THREAD_TIMEOUT_S:
            limit = f"{MAX_THREAD_TIMEOUT_S:g} seconds (the platform's limit)"
            raise Invalid(f"timeout must be at most {limit}, got {timeout:g}")
    repeat, min_pass = _repeat(args.pop("repeat"), args.pop("min_pass"))
    # every other option is an on/off switch
    flags: dict[str, bool] = {}
    for name, value in args.items():
        if not isinstance(value, bool):
            raise Invalid(f"{name} must be True or False, got {short(value)}")
        flags[name] = value
    if flags.get("advisory") and flags.get("critical"):
        # an advisory test is never part of the verdict; a critical one decides it alone
        raise Invalid("advisory=True and critical=True exclude each other")
    return ScriptumOptions(script, timeout=timeout, repeat=repeat, min_pass=min_pass, **flags)


def _attempt_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{name} must be an integer from 1 to {MAX_REPEAT}, got {short(value)}")
    if not 1 <= value <= MAX_REPEAT:
        raise Invalid(f"{name} must be from 1 to {MAX_REPEAT} (the cap on attempts per case), got {value}")
    return value


def _repeat(repeat: object, min_pass: object) -> tuple[int | None, int | None]:
    """``repeat`` in 1..MAX_REPEAT and ``min_pass`` in 1..repeat (DESIGN section 8 "Repeats"). A
    ``min_pass`` without ``repeat`` is checked against ``--scriptum-repeat`` when the session knows it
    (``_session.smoke``: a usage error naming the test)."""
    count = None if repeat is None else _attempt_count(repeat, "repeat")
    needed = None if min_pass is None else _attempt_count(min_pass, "min_pass")
    if count is not None and needed is not None and needed > count:
        raise Invalid(f"min_pass must be at most repeat ({count}), got {needed}")
    return count, needed


# --- smoke_input -------------------------------------------------------------------------------


def input_from(mark: pytest.Mark, where: Where) -> Any:
    """``@pytest.mark.smoke_input(value)``: a JSON value or ``"@file.json"``."""
    if mark.kwargs or len(mark.args) != 1:
        raise Invalid("takes exactly one positional argument: the input value or '@file.json'")
    return value_or_file(mark.args[0], where, "input")


# --- smoke_expect ------------------------------------------------------------------------------


def expectation_from(mark: pytest.Mark, where: Where) -> Expectation:
    """``@pytest.mark.smoke_expect(output=None, *, match="subset", schema=None, approx=None,
    regex=None, status="COMPLETED")``."""
    return expectation(bind(Expectation, mark.args, mark.kwargs, what="argument"), where)


def expectation(args: dict[str, Any], where: Where) -> Expectation:
    """Check the arguments of an :class:`Expectation` as :func:`bind` gives them (raw values,
    defaults applied); ``@refs`` are relative to ``where.base_dir``."""
    raw_output = args.pop("output")
    output: Any
    if raw_output is None or raw_output is UNSET:  # None in a marker or a case file: no output
        output = UNSET
    elif raw_output is JSON_NULL:
        output = None
    else:
        output = value_or_file(raw_output, where, "output")

    match = args.pop("match")
    if match not in ("subset", "exact"):
        raise Invalid(f"match must be 'subset' or 'exact', got {short(match)}")

    schema = _schema(args.pop("schema"), where)
    approx = _approx(args.pop("approx"), output)
    regex = _regex(args.pop("regex"))

    status = args.pop("status")
    if status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}, got {short(status)}")

    if args:  # an Expectation field this parser does not read: a bug here, not the author's mistake
        raise TypeError(f"smoke_expect arguments not parsed: {', '.join(args)}")
    return Expectation(
        output,
        match=cast(Literal["subset", "exact"], match),
        schema=schema,
        approx=approx,
        regex=regex,
        status=cast(str, status),
    )


def _schema(raw: Any, where: Where) -> dict[str, Any] | Literal["declared"] | None:
    if raw is None:
        return None
    if isinstance(raw, str) and raw == "declared":
        return "declared"
    if isinstance(raw, str):
        if not raw.startswith("@") or raw.startswith("@@"):
            raise Invalid(f"schema must be a dict, '@file.json' or 'declared', got {short(raw)}")
        ref = raw[1:]
        return _check_schema(load_json_file(ref, where, "schema"), f"schema file '{ref}'")
    return _check_schema(raw, "schema")


def _check_schema(schema: Any, label: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise Invalid(f"{label} must be a JSON Schema object, got {short(schema)}")
    # Imported here: only a test with a schema or regex loads jsonschema and the regex engine, so a
    # session that selects no smoke test imports neither (DESIGN section 6).
    from pytest_scriptum.expect import ExpectationError, usable_validator

    checked = cast(dict[str, Any], json_value(schema))
    try:  # the one check of a schema without an output: $schema, validity, $refs, formats, patterns
        usable_validator(checked)
    except ExpectationError as exc:
        raise Invalid(f"{label}: {exc}") from None
    return checked


def _approx(raw: Any, output: Any) -> float | dict[str, float] | None:
    if raw is None:
        return None
    if output is UNSET:
        raise Invalid("approx needs an expected output (it is the tolerance for comparing output numbers)")
    if not isinstance(raw, dict):
        return finite_float(raw, "approx", positive=False)
    tolerances: dict[str, float] = {}
    for written, tolerance in raw.items():
        segments = checked_path(written, "approx")
        path = pointer(segments)  # kept and shown as the JSON Pointer, whichever form was written
        if path in tolerances:
            raise Invalid(f"approx path {path!r} is given twice")
        # a path that leads nowhere (or to a non-number) would never apply: a silent mistake
        found, value = lookup(output, segments)
        if not found:
            raise Invalid(f"approx path {path!r} is not in the expected output")
        if not is_number(value):
            raise Invalid(f"approx path {path!r} leads to {short(value)} there, not a number")
        tolerances[path] = finite_float(tolerance, f"approx tolerance for {path!r}", positive=False)
    return tolerances


def _regex(raw: Any) -> dict[str, BoundedPattern] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise Invalid(f"regex must be a dict {{'/json/pointer': pattern}}, got {short(raw)}")
    from pytest_scriptum.expect import compile_pattern  # see _check_schema: loaded on first use

    patterns: dict[str, BoundedPattern] = {}
    for written, pattern in raw.items():
        path = pointer(checked_path(written, "regex"))  # kept and shown as the JSON Pointer
        if path in patterns:
            raise Invalid(f"regex path {path!r} is given twice")
        if not isinstance(pattern, str):
            raise Invalid(f"regex pattern for {path!r} must be a string, got {short(pattern)}")
        try:  # the engine that matches it, bounded in time (pytest_scriptum.expect)
            patterns[path] = compile_pattern(pattern)
        except ValueError as exc:
            raise Invalid(f"bad regex for {path!r}: {exc}") from None
    return patterns


# --- smoke_cases -------------------------------------------------------------------------------


def glob_from(mark: pytest.Mark) -> str:
    """``@pytest.mark.smoke_cases(glob)``: a non-empty glob relative to the test file."""
    if mark.kwargs or len(mark.args) != 1:
        raise Invalid("takes exactly one positional argument: a glob relative to the test file")
    glob = mark.args[0]
    if not isinstance(glob, str) or not glob:
        raise Invalid(f"the glob must be a non-empty string, got {short(glob)}")
    if Path(glob).is_absolute() or glob.startswith(("/", "\\")):
        raise Invalid(f"the glob {glob!r} must be relative to the test file's directory")
    return glob
