"""JSON values in marker arguments and case files: checked copies, ``@file`` references, paths.

* A value is plain JSON data: ``dict`` (string keys), ``list``, ``str``, ``int``, ``float``,
  ``bool`` or ``None``, checked recursively; tuples become lists; NaN, infinity, cycles and any
  other type are errors.
* A top-level string ``"@relative/path.json"`` is read as JSON from that file, relative to
  ``Where.base_dir``; ``"@@x"`` is the literal ``"@x"``. JSON files are strict: NaN/Infinity and
  duplicate object keys are errors.

Every problem is an :class:`~pytest_scriptum.markers.problems.Invalid`.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final, NoReturn

from pytest_scriptum.markers.problems import Invalid, Where, short
from pytest_scriptum.spec import parse_path, pointer

__all__ = [
    "checked_path",
    "is_number",
    "json_value",
    "load_json_file",
    "lookup",
    "parse_json_text",
    "value_or_file",
]

_MAX_DEPTH: Final = 200


def json_value(value: Any, path: str = "", depth: int = 0, stack: frozenset[int] = frozenset()) -> Any:
    """Return a checked copy of ``value`` as plain JSON data (tuples become lists).

    ``path`` names the position in problems as a JSON Pointer (``/lines/0``; the whole value is
    ``""`` and is not named); ``stack`` holds the ids of the containers above, to refuse a value
    that contains itself.
    """
    at = f"{path}: " if path else ""
    if depth > _MAX_DEPTH:
        raise Invalid(f"{at}nested more than {_MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid(f"{at}{value!r} is not a JSON number (NaN and infinity are not JSON)")
        return float(value)
    if isinstance(value, (list, tuple, dict)):
        if id(value) in stack:
            raise Invalid(f"{at}the value contains itself (circular reference)")
        inner = stack | {id(value)}
        if isinstance(value, dict):
            result: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise Invalid(f"{at}object key {short(key)} is not a string (JSON keys are)")
                result[key] = json_value(item, path + pointer([key]), depth + 1, inner)
            return result
        return [json_value(item, f"{path}/{i}", depth + 1, inner) for i, item in enumerate(value)]
    raise Invalid(
        f"{at}{type(value).__name__} {short(value)} is not a JSON value "
        "(use dict, list, str, int, float, bool or None)"
    )


def _reject_constant(name: str) -> NoReturn:
    raise Invalid(f"{name} is not valid JSON")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise Invalid(f"duplicate object key {key!r}")
        result[key] = value
    return result


def load_json_file(ref: str, where: Where, what: str) -> Any:
    """Load ``@relative/path.json`` (``ref`` without the ``@``) relative to ``where.base_dir``;
    ``what`` ("input", "schema", ...) names the file in problems."""
    if not ref:
        raise Invalid(f"empty {what} file reference '@' (write '@relative/path.json')")
    path = where.base_dir / ref
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Invalid(f"{what} file '{ref}' not found ({where.show(path)})") from None
    except IsADirectoryError:
        raise Invalid(f"{what} file '{ref}' is a directory ({where.show(path)})") from None
    except UnicodeDecodeError as exc:
        raise Invalid(f"{what} file {where.show(path)} is not UTF-8 text: {exc.reason}") from None
    except (OSError, ValueError) as exc:
        raise Invalid(f"cannot read {what} file '{ref}' ({where.show(path)}): {exc}") from None
    return parse_json_text(text, f"{what} file {where.show(path)}")


def parse_json_text(text: str, label: str) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate object keys; ``label`` names the source."""
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise Invalid(f"{label} is not valid JSON: {problem}") from None
    except Invalid as exc:
        raise Invalid(f"{label} is not valid JSON: {exc}") from None
    except RecursionError:
        raise Invalid(f"{label} nests too deeply to load") from None


def value_or_file(value: Any, where: Where, what: str) -> Any:
    """A JSON value, where a top-level ``"@path"`` string is a file ref and ``"@@x"`` means ``"@x"``."""
    if isinstance(value, str) and value.startswith("@"):
        if value.startswith("@@"):
            return value[1:]
        return json_value(load_json_file(value[1:], where, what))
    return json_value(value)


# --- output paths (JSON Pointer) ----------------------------------------------------------------


def checked_path(path: object, what: str) -> tuple[str, ...]:
    """:func:`~pytest_scriptum.spec.parse_path`, its ValueError as an Invalid about ``what``."""
    try:
        return parse_path(path)
    except ValueError as exc:
        raise Invalid(f"{what}: {exc}") from None


def lookup(value: Any, segments: tuple[str, ...]) -> tuple[bool, Any]:
    """``(True, the value at segments)`` in JSON data, or ``(False, None)`` when it is not there.

    A segment names an object's key, or indexes a list when it is a non-negative integer.
    """
    for segment in segments:
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and _is_index(segment) and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return False, None
    return True, value


def _is_index(segment: str) -> bool:
    return segment.isascii() and segment.isdigit()


def is_number(value: object) -> bool:
    """An int or float, never a bool (JSON has no bool-as-number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)
