"""The documented contract -> JSON Schema mapping, row by row, checked with a real validator.

Every schema is validated by jsonschema's Draft202012Validator (with its format checker) against
documents it must accept and documents it must reject, so a mapping row that is wrong in either
direction fails. Contracts are built as proto messages and rendered the ways the plugin meets
them (MessageToDict with proto names, plain camelCase, integer enums).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import timedelta, timezone
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.contract_schema import DRAFT_2020_12, contract_json_schema, type_json_schema

K = pb.TypeKind


def as_dict(contract: pb.ScriptContract) -> dict[str, Any]:
    return json_format.MessageToDict(contract, preserving_proto_field_name=True)


def validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def one_field(field: pb.TypedField, *, enums: list[pb.EnumDef] | None = None) -> dict[str, Any]:
    return contract_json_schema(as_dict(pb.ScriptContract(outputs=[field], enums=enums or [])), "outputs")


def accepts(schema: Mapping[str, Any], value: Any) -> bool:
    return validator(schema).is_valid({"v": value})


CATEGORY = pb.EnumDef(name="Category", base=K.TYPE_KIND_TEXT, values_json=['"food"', '"travel"'])
STATUS = pb.EnumDef(name="Status", base=K.TYPE_KIND_INTEGER, values_json=["200", "404"])

# (type, values the field schema must accept, values it must reject); one row per mapping row.
ROWS: list[tuple[str, pb.TypeRef, list[Any], list[Any]]] = [
    ("text", pb.TypeRef(kind=K.TYPE_KIND_TEXT), ["", "abc"], [1, None, True, []]),
    ("number", pb.TypeRef(kind=K.TYPE_KIND_NUMBER), [0, 1.5, -3], ["1", None, True]),
    ("integer", pb.TypeRef(kind=K.TYPE_KIND_INTEGER), [0, -7, 2.0], [1.5, "1", None, False]),
    ("boolean", pb.TypeRef(kind=K.TYPE_KIND_BOOLEAN), [True, False], [0, "true", None]),
    ("object", pb.TypeRef(kind=K.TYPE_KIND_OBJECT), [{}, {"a": [1, None]}], [[], "x", None]),
    ("binary", pb.TypeRef(kind=K.TYPE_KIND_BINARY), ["", "aGk=", "aGVsbG8="], ["hi!", "aGk", 5]),
    (
        "date",
        pb.TypeRef(kind=K.TYPE_KIND_DATE),
        ["2026-05-14"],
        ["2026-02-30", "14.05.2026", "2026-05-14T00:00:00Z"],
    ),
    (
        "timestamp",
        pb.TypeRef(kind=K.TYPE_KIND_TIMESTAMP),
        ["2026-05-14T10:00:00Z", "2026-05-14T10:00:00.123+02:00"],
        ["2026-05-14", "2026-05-14T10:00:00", "yesterday", 1715680800],
    ),
    ("any", pb.TypeRef(kind=K.TYPE_KIND_ANY), [None, 1, "x", [], {}], []),
    (
        "list<integer>",
        pb.TypeRef(kind=K.TYPE_KIND_LIST, element=pb.TypeRef(kind=K.TYPE_KIND_INTEGER)),
        [[], [1, 2]],
        [[1.5], ["1"], {}, None],
    ),
    ("list (bare)", pb.TypeRef(kind=K.TYPE_KIND_LIST), [[], [1, "a", None]], [{}, "x"]),
    (
        "map<text, number>",
        pb.TypeRef(
            kind=K.TYPE_KIND_MAP,
            key=pb.TypeRef(kind=K.TYPE_KIND_TEXT),
            value=pb.TypeRef(kind=K.TYPE_KIND_NUMBER),
        ),
        [{}, {"a": 1, "b": 2.5}],
        [{"a": "1"}, [], None],
    ),
    (
        "map<Category, integer>",
        pb.TypeRef(
            kind=K.TYPE_KIND_MAP,
            key=pb.TypeRef(kind=K.TYPE_KIND_ENUM, enum_name="Category"),
            value=pb.TypeRef(kind=K.TYPE_KIND_INTEGER),
        ),
        [{}, {"food": 1}],
        [{"other": 1}, {"food": 1.5}],
    ),
    (
        "text enum",
        pb.TypeRef(kind=K.TYPE_KIND_ENUM, enum_name="Category"),
        ["food", "travel"],
        ["Food", 1, None],
    ),
    ("integer enum", pb.TypeRef(kind=K.TYPE_KIND_ENUM, enum_name="Status"), [200, 404], [201, "200", None]),
]


@pytest.mark.parametrize(("label", "type_ref", "good", "bad"), ROWS, ids=[row[0] for row in ROWS])
def test_type_mapping_row(label: str, type_ref: pb.TypeRef, good: list[Any], bad: list[Any]) -> None:
    schema = one_field(pb.TypedField(name="v", type=type_ref, required=True), enums=[CATEGORY, STATUS])
    for value in good:
        assert accepts(schema, value), f"{label} must accept {value!r}: {schema['properties']['v']}"
    for value in bad:
        assert not accepts(schema, value), f"{label} must reject {value!r}: {schema['properties']['v']}"


def test_exact_shapes_of_the_documented_rows() -> None:
    contract = as_dict(pb.ScriptContract(enums=[CATEGORY, STATUS]))

    def shape(type_ref: pb.TypeRef) -> dict[str, Any]:
        return type_json_schema(
            contract, json_format.MessageToDict(type_ref, preserving_proto_field_name=True)
        )

    assert shape(pb.TypeRef(kind=K.TYPE_KIND_TEXT)) == {"type": "string"}
    assert shape(pb.TypeRef(kind=K.TYPE_KIND_NUMBER)) == {"type": "number"}
    assert shape(pb.TypeRef(kind=K.TYPE_KIND_INTEGER)) == {"type": "integer"}
    assert shape(pb.TypeRef(kind=K.TYPE_KIND_BOOLEAN)) == {"type": "boolean"}
    assert shape(pb.TypeRef(kind=K.TYPE_KIND_OBJECT)) == {"type": "object"}
    assert shape(pb.TypeRef(kind=K.TYPE_KIND_ANY)) == {}
    binary = shape(pb.TypeRef(kind=K.TYPE_KIND_BINARY))
    assert binary["type"] == "string" and binary["contentEncoding"] == "base64"
    date = shape(pb.TypeRef(kind=K.TYPE_KIND_DATE))
    assert date["type"] == "string" and date["format"] == "date"
    timestamp = shape(pb.TypeRef(kind=K.TYPE_KIND_TIMESTAMP))
    assert timestamp["type"] == "string" and timestamp["format"] == "date-time"
    assert shape(pb.TypeRef(kind=K.TYPE_KIND_LIST, element=pb.TypeRef(kind=K.TYPE_KIND_TEXT))) == {
        "type": "array",
        "items": {"type": "string"},
    }
    assert shape(
        pb.TypeRef(
            kind=K.TYPE_KIND_MAP,
            key=pb.TypeRef(kind=K.TYPE_KIND_TEXT),
            value=pb.TypeRef(kind=K.TYPE_KIND_ANY),
        )
    ) == {"type": "object", "additionalProperties": {}}
    assert shape(pb.TypeRef(kind=K.TYPE_KIND_ENUM, enum_name="Status")) == {"enum": [200, 404]}


# (constraints, keywords they become, values accepted, values rejected)
CONSTRAINT_ROWS: list[tuple[str, pb.TypeRef, pb.TypeConstraints, dict[str, Any], list[Any], list[Any]]] = [
    (
        "range",
        pb.TypeRef(kind=K.TYPE_KIND_NUMBER),
        pb.TypeConstraints(minimum=0, maximum=1.5),
        {"minimum": 0, "maximum": 1.5},
        [0, 1.5, 0.7],
        [-0.01, 1.51],
    ),
    (
        "min",
        pb.TypeRef(kind=K.TYPE_KIND_INTEGER),
        pb.TypeConstraints(minimum=1),
        {"minimum": 1},
        [1, 99],
        [0, -1],
    ),
    (
        "max",
        pb.TypeRef(kind=K.TYPE_KIND_INTEGER),
        pb.TypeConstraints(maximum=-2),
        {"maximum": -2},
        [-2],
        [-1, 0],
    ),
    (
        "length",
        pb.TypeRef(kind=K.TYPE_KIND_TEXT),
        pb.TypeConstraints(min_length=1, max_length=3),
        {"minLength": 1, "maxLength": 3},
        ["a", "abc"],
        ["", "abcd"],
    ),
    (
        "pattern",
        pb.TypeRef(kind=K.TYPE_KIND_TEXT),
        pb.TypeConstraints(pattern="^R-[0-9a-f]{8}$"),
        {"pattern": "^R-[0-9a-f]{8}$"},
        ["R-0123abcd"],
        ["R-0123ABCD", "xR-0123abcd", "R-0123abc"],
    ),
    (
        "min_items/max_items",
        pb.TypeRef(kind=K.TYPE_KIND_LIST, element=pb.TypeRef(kind=K.TYPE_KIND_INTEGER)),
        pb.TypeConstraints(min_items=1, max_items=2),
        {"minItems": 1, "maxItems": 2},
        [[1], [1, 2]],
        [[], [1, 2, 3]],
    ),
    (
        "unique",
        pb.TypeRef(kind=K.TYPE_KIND_LIST, element=pb.TypeRef(kind=K.TYPE_KIND_ANY)),
        pb.TypeConstraints(unique=True),
        {"uniqueItems": True},
        [[], [1, "1", [1]]],
        [[1, 1], [{"a": 1}, {"a": 1}]],
    ),
]


@pytest.mark.parametrize(
    ("label", "type_ref", "constraints", "keywords", "good", "bad"),
    CONSTRAINT_ROWS,
    ids=[row[0] for row in CONSTRAINT_ROWS],
)
def test_constraint_mapping_row(
    label: str,
    type_ref: pb.TypeRef,
    constraints: pb.TypeConstraints,
    keywords: dict[str, Any],
    good: list[Any],
    bad: list[Any],
) -> None:
    schema = one_field(pb.TypedField(name="v", type=type_ref, constraints=constraints, required=True))
    field_schema = schema["properties"]["v"]
    for keyword, value in keywords.items():
        assert field_schema[keyword] == value
        # int64 constraints arrive as strings in MessageToDict; the schema has real numbers.
        assert not isinstance(field_schema[keyword], str) or keyword == "pattern"
    for value in good:
        assert accepts(schema, value), f"{label} must accept {value!r}"
    for value in bad:
        assert not accepts(schema, value), f"{label} must reject {value!r}"


def test_section_shape_required_and_closed() -> None:
    contract = pb.ScriptContract(
        inputs=[
            pb.TypedField(name="text", type=pb.TypeRef(kind=K.TYPE_KIND_TEXT), required=True),
            pb.TypedField(name="locale", type=pb.TypeRef(kind=K.TYPE_KIND_TEXT), default_value_json='"en"'),
        ]
    )
    schema = contract_json_schema(as_dict(contract), "inputs")
    assert schema["$schema"] == DRAFT_2020_12 == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["required"] == ["text"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["locale"] == {"type": "string", "default": "en"}
    check = validator(schema)
    assert check.is_valid({"text": "x"})
    assert check.is_valid({"text": "x", "locale": "de"})
    assert not check.is_valid({"locale": "en"})  # required missing
    assert not check.is_valid({"text": "x", "curency": "EUR"})  # an undeclared key is reported
    assert not check.is_valid(["text"])
    loose = contract_json_schema(as_dict(contract), "inputs", additional_properties=True)
    assert validator(loose).is_valid({"text": "x", "extra": 1})


def test_each_section_reads_its_own_fields() -> None:
    text = pb.TypeRef(kind=K.TYPE_KIND_TEXT)
    contract = as_dict(
        pb.ScriptContract(
            inputs=[pb.TypedField(name="i", type=text, required=True)],
            outputs=[pb.TypedField(name="o", type=text, required=True)],
            stream=[pb.TypedField(name="s", type=text, required=True)],
            env=[pb.TypedField(name="E", type=text, required=True)],
        )
    )
    for section, name in (("inputs", "i"), ("outputs", "o"), ("stream", "s")):
        schema = contract_json_schema(contract, section)
        assert list(schema["properties"]) == [name] and schema["required"] == [name]


def test_empty_section_accepts_only_the_empty_object() -> None:
    schema = contract_json_schema({}, "stream")
    assert schema["properties"] == {} and schema["required"] == []
    assert validator(schema).is_valid({})
    assert not validator(schema).is_valid({"x": 1})


@pytest.mark.parametrize(
    ("type_ref", "enums", "schema_type"),
    [
        (pb.TypeRef(kind=K.TYPE_KIND_TEXT), [], ["string", "null"]),
        (pb.TypeRef(kind=K.TYPE_KIND_LIST), [], ["array", "null"]),
        (pb.TypeRef(kind=K.TYPE_KIND_ENUM, enum_name="Category"), [CATEGORY], None),
        (pb.TypeRef(kind=K.TYPE_KIND_ANY), [], None),
    ],
)
def test_null_default_makes_the_value_nullable(
    type_ref: pb.TypeRef, enums: list[pb.EnumDef], schema_type: list[str] | None
) -> None:
    field = pb.TypedField(name="v", type=type_ref, default_value_json="null")
    schema = one_field(field, enums=enums)
    assert schema["required"] == []
    assert schema["properties"]["v"]["default"] is None
    if schema_type is not None:
        assert schema["properties"]["v"]["type"] == schema_type
    assert accepts(schema, None)
    assert validator(schema).is_valid({})


def test_non_null_default_keeps_null_out() -> None:
    field = pb.TypedField(name="v", type=pb.TypeRef(kind=K.TYPE_KIND_INTEGER), default_value_json="3")
    schema = one_field(field)
    assert schema["properties"]["v"] == {"type": "integer", "default": 3}
    assert not accepts(schema, None)
    enum_schema = one_field(
        pb.TypedField(
            name="v",
            type=pb.TypeRef(kind=K.TYPE_KIND_ENUM, enum_name="Category"),
            default_value_json='"food"',
        ),
        enums=[CATEGORY],
    )
    assert enum_schema["properties"]["v"]["enum"] == ["food", "travel"]


def test_description_becomes_description() -> None:
    field = pb.TypedField(
        name="v", type=pb.TypeRef(kind=K.TYPE_KIND_TEXT), description="ISO code", required=True
    )
    assert one_field(field)["properties"]["v"]["description"] == "ISO code"


def test_kind_spellings_and_camel_case_keys() -> None:
    contract = pb.ScriptContract(
        outputs=[
            pb.TypedField(
                name="tags",
                type=pb.TypeRef(
                    kind=K.TYPE_KIND_LIST, element=pb.TypeRef(kind=K.TYPE_KIND_ENUM, enum_name="Category")
                ),
                constraints=pb.TypeConstraints(min_items=1, max_length=9),
                default_value_json='["food"]',
            )
        ],
        enums=[CATEGORY],
    )
    expected = contract_json_schema(as_dict(contract), "outputs")
    assert expected["properties"]["tags"]["minItems"] == 1
    camel = json_format.MessageToDict(contract)  # defaultValueJson, enumName, minItems, valuesJson
    assert "defaultValueJson" in json.dumps(camel)
    assert contract_json_schema(camel, "outputs") == expected
    numbers = json_format.MessageToDict(
        contract, preserving_proto_field_name=True, use_integers_for_enums=True
    )
    assert contract_json_schema(numbers, "outputs") == expected
    unprefixed = json.loads(json.dumps(as_dict(contract)).replace("TYPE_KIND_", ""))
    assert contract_json_schema(unprefixed, "outputs") == expected
    lower = json.loads(json.dumps(unprefixed).replace('"LIST"', '"list"').replace('"ENUM"', '"enum"'))
    assert contract_json_schema(lower, "outputs") == expected


@pytest.mark.parametrize(
    ("contract", "section", "message"),
    [
        ({}, "output", "unknown contract section 'output'"),
        ({"outputs": [{"name": "v"}]}, "outputs", "outputs field 'v' has no type"),
        ({"outputs": [{"name": "v", "type": {"kind": "TYPE_KIND_WHAT"}}]}, "outputs", "unknown type kind"),
        ({"outputs": [{"name": "v", "type": {"kind": 99}}]}, "outputs", "unknown type kind number 99"),
        ({"outputs": [{"name": "v", "type": {}}]}, "outputs", "has no type"),
        (
            {"outputs": [{"name": "v", "type": {"kind": "TEXT"}, "default_value_json": "EUR"}]},
            "outputs",
            "not a JSON",
        ),
        (
            {"outputs": [{"name": "v", "type": {"kind": "ENUM", "enum_name": "Nope"}}]},
            "outputs",
            "enum 'Nope' is not declared",
        ),
        ({"outputs": [{"name": "v", "type": {"kind": "ENUM"}}]}, "outputs", "needs an enum_name"),
        ({"outputs": [{"type": {"kind": "TEXT"}}]}, "outputs", "has no name"),
        (
            {"outputs": [{"name": "v", "type": {"kind": "TEXT"}}, {"name": "v", "type": {"kind": "TEXT"}}]},
            "outputs",
            "declared twice",
        ),
        ({"outputs": [{"name": "v", "type": {"kind": "UNSPECIFIED"}}]}, "outputs", "cannot be mapped"),
    ],
)
def test_malformed_contracts_are_value_errors(contract: dict[str, Any], section: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        contract_json_schema(contract, section)


# --- property: a value built to fit a declared type always validates ---------------------------

_ZONES = [timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
_SCALARS: dict[pb.TypeKind.ValueType, st.SearchStrategy[Any]] = {
    K.TYPE_KIND_TEXT: st.text(max_size=5),
    K.TYPE_KIND_NUMBER: st.floats(allow_nan=False, allow_infinity=False) | st.integers(),
    K.TYPE_KIND_INTEGER: st.integers(),
    K.TYPE_KIND_BOOLEAN: st.booleans(),
    K.TYPE_KIND_OBJECT: st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    K.TYPE_KIND_ANY: st.none() | st.integers() | st.text(max_size=3),
    K.TYPE_KIND_DATE: st.dates().map(lambda d: d.isoformat()),
    # RFC 3339 offsets are whole minutes (Python's isoformat would print historical second offsets).
    K.TYPE_KIND_TIMESTAMP: st.datetimes(timezones=st.sampled_from(_ZONES)).map(lambda t: t.isoformat()),
    K.TYPE_KIND_BINARY: st.binary(max_size=8).map(lambda b: base64.b64encode(b).decode()),
}


def type_refs(depth: int = 0) -> st.SearchStrategy[pb.TypeRef]:
    scalars = st.sampled_from(sorted(_SCALARS)).map(lambda kind: pb.TypeRef(kind=kind))
    if depth >= 2:
        return scalars
    inner = type_refs(depth + 1)
    lists = inner.map(lambda element: pb.TypeRef(kind=K.TYPE_KIND_LIST, element=element))
    maps = inner.map(
        lambda value: pb.TypeRef(kind=K.TYPE_KIND_MAP, key=pb.TypeRef(kind=K.TYPE_KIND_TEXT), value=value)
    )
    return scalars | lists | maps


def values_of(type_ref: pb.TypeRef) -> st.SearchStrategy[Any]:
    if type_ref.kind == K.TYPE_KIND_LIST:
        return st.lists(values_of(type_ref.element), max_size=3)
    if type_ref.kind == K.TYPE_KIND_MAP:
        return st.dictionaries(st.text(max_size=3), values_of(type_ref.value), max_size=3)
    return _SCALARS[type_ref.kind]


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[pb.TypeRef, Any]:
    type_ref = draw(type_refs())
    return type_ref, draw(values_of(type_ref))


@settings(max_examples=150, deadline=None)
@given(typed_values(), st.booleans())
def test_values_of_the_declared_type_validate(type_and_value: tuple[pb.TypeRef, Any], nullable: bool) -> None:
    type_ref, value = type_and_value
    field = pb.TypedField(
        name="v", type=type_ref, required=not nullable, default_value_json="null" if nullable else ""
    )
    schema = one_field(field)
    assert accepts(schema, value), (schema, value)
    assert accepts(schema, None) == (nullable or type_ref.kind == K.TYPE_KIND_ANY)
