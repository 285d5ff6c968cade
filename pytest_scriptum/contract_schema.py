"""A version's declared ``ScriptContract`` section as a JSON Schema (draft 2020-12).

:func:`contract_json_schema` is the documented contract -> JSON Schema mapping behind
``smoke_expect(schema="declared")`` and the embedded server's input check at ``CreateThread``.
It reads the contract as a plain mapping, as ``json_format.MessageToDict(contract,
preserving_proto_field_name=True)`` renders it (int64 values as strings, enums by name such as
``"TYPE_KIND_TEXT"``, false/empty fields left out); unprefixed kind names (``"TEXT"``, ``"text"``),
the proto's kind numbers and camelCase keys (``defaultValueJson``: plain ``MessageToDict`` or the
HTTP gateway's pbjson) are accepted too. This module imports only the standard library, so the
plugin can use it without the generated proto code.

Section schema: ``{"$schema": <2020-12>, "type": "object", "properties": {...}, "required":
[names whose "required" is true, in declaration order], "additionalProperties": false}``.

Why ``additionalProperties: false`` (all sections; pass ``additional_properties=True`` to loosen):
a contract is a closed record. For ``outputs``, a key the contract does not declare is surface a
consumer may start to depend on without the contract knowing, and a renamed field shows up as one
missing and one *extra* key, so a careful user wants the extra key reported rather than ignored.
For ``inputs``, an undeclared key is never bound by the script, so it is almost always a caller's
typo (``curency`` for ``currency``) that would otherwise silently fall back to the default.

Type mapping (``TypeRef.kind`` -> schema):

============  ================================================================================
text          ``{"type": "string"}``
number        ``{"type": "number"}``
integer       ``{"type": "integer"}``  (JSON Schema: ``1.0`` is an integer too)
boolean       ``{"type": "boolean"}``
object        ``{"type": "object"}``  (untyped: any keys, any values)
binary        ``{"type": "string", "contentEncoding": "base64", "pattern": <padded base64>}``
              (``contentEncoding`` is only an annotation in 2020-12; the pattern asserts it)
date          ``{"type": "string", "format": "date", "pattern": "^YYYY-MM-DD$"-shape}``
              (the pattern asserts the shape even without a format checker; a format checker
              also rejects impossible dates such as ``2026-02-30``)
timestamp     ``{"type": "string", "format": "date-time", "pattern": <RFC 3339 date-time>}``
              (jsonschema's ``date-time`` format check needs an optional package; the pattern
              asserts the RFC 3339 shape always)
any           ``{}``  (anything, null included)
list<T>       ``{"type": "array", "items": <schema of T>}``
map<K,V>      ``{"type": "object", "additionalProperties": <schema of V>}``; when K is an enum,
              also ``"propertyNames": {"enum": [...]}``
enum Name     ``{"enum": [<each EnumDef.values_json decoded>]}`` (``"food"``, ``200``)
============  ================================================================================

Constraints (``TypedField.constraints``), on the field's own schema:

=====================  =========================================
range(min, max)        ``minimum`` and ``maximum`` (inclusive)
min(n) / max(n)        ``minimum`` / ``maximum``
length(min, max)       ``minLength`` / ``maxLength``
pattern("re")          ``pattern`` (unanchored, like ECMA-262 ``test``)
min_items(n)           ``minItems``
max_items(n)           ``maxItems``
unique                 ``uniqueItems: true``
=====================  =========================================

Defaults: ``default_value_json`` decoded becomes ``"default"`` (an annotation). A default of JSON
``null`` means the value may also be ``null``: ``"type"`` becomes ``[<type>, "null"]`` (an enum
gets ``null`` among its values; ``any`` already allows it). A field with a default is not
required. The trailing ``-- comment`` of a field (``description``) becomes ``"description"``.

Errors: :class:`ValueError` for an unknown section, a field without a type, an unknown kind, an
``enum_name`` missing from ``enums``, or a default / enum value that is not JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["DRAFT_2020_12", "SECTIONS", "contract_json_schema", "type_json_schema"]

DRAFT_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"
SECTIONS: Final = ("inputs", "outputs", "stream")

# Proto TypeKind numbers (scriptum.proto), for dicts made with use_integers_for_enums=True.
_KIND_NUMBERS: Final = {
    0: "UNSPECIFIED", 1: "TEXT", 2: "NUMBER", 3: "INTEGER", 4: "BOOLEAN", 5: "OBJECT", 6: "BINARY",
    7: "DATE", 8: "TIMESTAMP", 9: "ANY", 10: "LIST", 11: "MAP", 12: "ENUM",
}  # fmt: skip

# Padded standard base64 (RFC 4648 section 4), whole string.
_BASE64: Final = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
_DATE: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# RFC 3339 section 5.6 date-time ("T" or "t" or a space between date and time, as RFC 3339 allows).
_DATE_TIME: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)

_SIMPLE: Final[Mapping[str, Mapping[str, Any]]] = {
    "TEXT": {"type": "string"},
    "NUMBER": {"type": "number"},
    "INTEGER": {"type": "integer"},
    "BOOLEAN": {"type": "boolean"},
    "OBJECT": {"type": "object"},
    "BINARY": {"type": "string", "contentEncoding": "base64", "pattern": _BASE64},
    "DATE": {"type": "string", "format": "date", "pattern": _DATE},
    "TIMESTAMP": {"type": "string", "format": "date-time", "pattern": _DATE_TIME},
    "ANY": {},
}


def _get(message: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """`message[name]`, or its camelCase spelling (pbjson / plain MessageToDict), or `default`."""
    if name in message:
        return message[name]
    head, *rest = name.split("_")
    camel = head + "".join(part.title() for part in rest)
    return message.get(camel, default)


def _kind(type_ref: Mapping[str, Any]) -> str:
    raw = _get(type_ref, "kind", "UNSPECIFIED")
    if isinstance(raw, int) and not isinstance(raw, bool):
        name = _KIND_NUMBERS.get(raw)
        if name is None:
            raise ValueError(f"unknown type kind number {raw}")
        return name
    if not isinstance(raw, str):
        raise ValueError(f"type kind must be a name or a number, got {raw!r}")
    name = raw.upper().removeprefix("TYPE_KIND_")
    if name not in _KIND_NUMBERS.values():
        raise ValueError(f"unknown type kind {raw!r}")
    return name


def _decode_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} is not a JSON literal: {text!r} ({exc})") from None


def _enum_values(contract: Mapping[str, Any], enum_name: str) -> list[Any]:
    for enum_def in _get(contract, "enums", None) or ():
        if _get(enum_def, "name", "") == enum_name:
            values = _get(enum_def, "values_json", None) or ()
            return [_decode_json(v, f"enum {enum_name} value") for v in values]
    raise ValueError(f"enum {enum_name!r} is not declared in the contract's enums")


def type_json_schema(contract: Mapping[str, Any], type_ref: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of one ``TypeRef`` (a dict as above); ``contract`` resolves enum names."""
    kind = _kind(type_ref)
    if kind in _SIMPLE:
        return dict(_SIMPLE[kind])
    if kind == "LIST":
        element = _get(type_ref, "element", None)
        # A list without an element type is `list` = list<any>.
        return {"type": "array", "items": type_json_schema(contract, element) if element else {}}
    if kind == "MAP":
        schema: dict[str, Any] = {"type": "object"}
        value = _get(type_ref, "value", None)
        schema["additionalProperties"] = type_json_schema(contract, value) if value else {}
        key = _get(type_ref, "key", None)
        if key and _kind(key) == "ENUM":
            schema["propertyNames"] = type_json_schema(contract, key)
        return schema
    if kind == "ENUM":
        enum_name = _get(type_ref, "enum_name", "")
        if not enum_name:
            raise ValueError("an enum type needs an enum_name")
        return {"enum": _enum_values(contract, enum_name)}
    raise ValueError(f"type kind {kind} cannot be mapped (the field's type is not set)")


def _number(value: Any) -> int | float:
    """A bound as written: ``3.0`` -> ``3`` for readable schemas; int64 strings -> int."""
    number = float(value)
    return int(number) if number.is_integer() else number


def _apply_constraints(schema: dict[str, Any], constraints: Mapping[str, Any]) -> None:
    for proto_name, keyword in (("minimum", "minimum"), ("maximum", "maximum")):
        if _get(constraints, proto_name) is not None:
            schema[keyword] = _number(_get(constraints, proto_name))
    for proto_name, keyword in (
        ("min_length", "minLength"),
        ("max_length", "maxLength"),
        ("min_items", "minItems"),
        ("max_items", "maxItems"),
    ):
        if _get(constraints, proto_name) is not None:
            schema[keyword] = int(_get(constraints, proto_name))
    if _get(constraints, "pattern"):
        schema["pattern"] = _get(constraints, "pattern")
    if _get(constraints, "unique"):
        schema["uniqueItems"] = True


def _field_schema(contract: Mapping[str, Any], field: Mapping[str, Any], section: str) -> dict[str, Any]:
    name = _get(field, "name", "")
    type_ref = _get(field, "type", None)
    if not type_ref:
        raise ValueError(f"{section} field {name!r} has no type")
    schema = type_json_schema(contract, type_ref)
    _apply_constraints(schema, _get(field, "constraints", None) or {})
    default_json = _get(field, "default_value_json", "")
    if default_json:
        default = _decode_json(default_json, f"{section} field {name!r} default")
        if default is None:
            if isinstance(schema.get("type"), str):
                schema["type"] = [schema["type"], "null"]
            elif "enum" in schema and None not in schema["enum"]:
                schema["enum"] = [*schema["enum"], None]
        schema["default"] = default
    description = _get(field, "description", "")
    if description:
        schema["description"] = description
    return schema


def contract_json_schema(
    contract: Mapping[str, Any], section: str, *, additional_properties: bool = False
) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one section of a contract dict; see the module docstring.

    ``section`` is ``"inputs"``, ``"outputs"`` or ``"stream"``. An empty or missing section gives
    a schema that accepts only ``{}`` (nothing declared, nothing extra), or any object with
    ``additional_properties=True``.
    """
    if section not in SECTIONS:
        raise ValueError(f"unknown contract section {section!r} (expected one of {', '.join(SECTIONS)})")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in _get(contract, section, None) or ():
        name = _get(field, "name", "")
        if not name:
            raise ValueError(f"a {section} field has no name")
        if name in properties:
            raise ValueError(f"{section} field {name!r} is declared twice")
        properties[name] = _field_schema(contract, field, section)
        if _get(field, "required", False):
            required.append(name)
    return {
        "$schema": DRAFT_2020_12,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": additional_properties,
    }
