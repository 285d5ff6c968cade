"""The `.scriptum` declaration parser: every construct, every error position, the example suite.

The parser is the embedded server's source of a version's ``ScriptContract`` (seed
``vN/contract.scriptum``); these tests pin what each line means and where a mistake is reported.
"""

from __future__ import annotations

import json
import pickle
import re
from typing import Any

import pytest
from google.protobuf import json_format, text_format
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from kit import EXAMPLE_SUITE as SUITE

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.contract_schema import contract_json_schema
from pytest_scriptum.devserver._contract_lang import (
    ContractSyntaxError,
    parse_contract,
    parse_declarations,
)

K = pb.TypeKind
SCRIPT = SUITE / "seed" / "scripts" / "invoice-parser"

DESIGN_EXAMPLE = """\
script "receipt-classifier"
  Classifies one receipt.
version "1.0.0"
enum Category = "food" | "travel" | "office" | "other"
input
  merchant : text length(1, 200)
  amount : any
  currency : text = "EUR"
output
  receipt_id : text pattern("^R-[0-9a-f]{8}$")
  category : Category
  amount_cents : integer
env
  OPENAI_API_KEY from "OPENAI_API_KEY"
  MODEL = "gpt-4.1"
"""

DESIGN_CONTRACT = """
inputs { name: "merchant" type { kind: TYPE_KIND_TEXT } required: true
         constraints { min_length: 1 max_length: 200 } }
inputs { name: "amount" type { kind: TYPE_KIND_ANY } required: true }
inputs { name: "currency" type { kind: TYPE_KIND_TEXT } default_value_json: '"EUR"' }
outputs { name: "receipt_id" type { kind: TYPE_KIND_TEXT } required: true
          constraints { pattern: "^R-[0-9a-f]{8}$" } }
outputs { name: "category" type { kind: TYPE_KIND_ENUM enum_name: "Category" } required: true }
outputs { name: "amount_cents" type { kind: TYPE_KIND_INTEGER } required: true }
env { name: "OPENAI_API_KEY" type { kind: TYPE_KIND_TEXT } required: true env_from: "OPENAI_API_KEY" }
env { name: "MODEL" type { kind: TYPE_KIND_TEXT } default_value_json: '"gpt-4.1"' }
enums { name: "Category" base: TYPE_KIND_TEXT
        values_json: ['"food"', '"travel"', '"office"', '"other"'] }
"""


def contract_of(text: str) -> pb.ScriptContract:
    return text_format.Parse(text, pb.ScriptContract())


def one_input(declaration: str, *, header: str = "") -> pb.TypedField:
    contract = parse_contract(f'script "s"\n{header}input\n  {declaration}\n', "t.scriptum")
    assert len(contract.inputs) == 1
    return contract.inputs[0]


def error_of(text: str) -> ContractSyntaxError:
    with pytest.raises(ContractSyntaxError) as caught:
        parse_contract(text, "bad.scriptum")
    return caught.value


# --- the documented example ---------------------------------------------------------------------


def test_design_example_parses_to_the_expected_contract() -> None:
    declarations = parse_declarations(DESIGN_EXAMPLE, "receipt-classifier.scriptum")
    assert declarations.contract == contract_of(DESIGN_CONTRACT)
    assert declarations.name == "receipt-classifier"
    assert declarations.description == "Classifies one receipt."
    assert declarations.version == "1.0.0"
    assert declarations.body_line is None
    assert parse_contract(DESIGN_EXAMPLE, "x") == declarations.contract


def test_design_example_round_trips_to_a_json_schema() -> None:
    as_dict = json_format.MessageToDict(
        parse_contract(DESIGN_EXAMPLE, "x.scriptum"), preserving_proto_field_name=True
    )
    inputs = Draft202012Validator(contract_json_schema(as_dict, "inputs"))
    assert inputs.is_valid({"merchant": "Café", "amount": {"v": 1}})
    assert inputs.is_valid({"merchant": "x" * 200, "amount": None, "currency": "USD"})
    assert not inputs.is_valid({"merchant": "", "amount": 1})  # length(1, 200)
    assert not inputs.is_valid({"merchant": "x" * 201, "amount": 1})
    assert not inputs.is_valid({"merchant": "m"})  # amount : any is still required
    outputs = Draft202012Validator(contract_json_schema(as_dict, "outputs"))
    good = {"receipt_id": "R-0123abcd", "category": "food", "amount_cents": 1250}
    assert outputs.is_valid(good)
    assert not outputs.is_valid({**good, "receipt_id": "R-0123"})
    assert not outputs.is_valid({**good, "category": "fuel"})
    assert not outputs.is_valid({**good, "amount_cents": 12.5})
    assert not outputs.is_valid({**good, "extra": 1})
    assert not outputs.is_valid({"receipt_id": "R-0123abcd", "category": "food"})


# --- types ----------------------------------------------------------------------------------------

ALIASES = [
    ("text", K.TYPE_KIND_TEXT),
    ("string", K.TYPE_KIND_TEXT),
    ("number", K.TYPE_KIND_NUMBER),
    ("float", K.TYPE_KIND_NUMBER),
    ("double", K.TYPE_KIND_NUMBER),
    ("integer", K.TYPE_KIND_INTEGER),
    ("int", K.TYPE_KIND_INTEGER),
    ("int32", K.TYPE_KIND_INTEGER),
    ("int64", K.TYPE_KIND_INTEGER),
    ("long", K.TYPE_KIND_INTEGER),
    ("boolean", K.TYPE_KIND_BOOLEAN),
    ("bool", K.TYPE_KIND_BOOLEAN),
    ("object", K.TYPE_KIND_OBJECT),
    ("binary", K.TYPE_KIND_BINARY),
    ("date", K.TYPE_KIND_DATE),
    ("timestamp", K.TYPE_KIND_TIMESTAMP),
    ("datetime", K.TYPE_KIND_TIMESTAMP),
    ("any", K.TYPE_KIND_ANY),
    ("value", K.TYPE_KIND_ANY),
]


@pytest.mark.parametrize(("spelling", "kind"), ALIASES)
def test_every_type_and_alias(spelling: str, kind: int) -> None:
    field = one_input(f"x : {spelling}")
    assert field.type == pb.TypeRef(kind=kind)  # type: ignore[arg-type]
    assert field.required and field.default_value_json == ""


def test_generic_types() -> None:
    assert (
        one_input("x : list<text>").type
        == contract_of("inputs { type { kind: TYPE_KIND_LIST element { kind: TYPE_KIND_TEXT } } }")
        .inputs[0]
        .type
    )
    assert one_input("x : list").type == pb.TypeRef(
        kind=K.TYPE_KIND_LIST, element=pb.TypeRef(kind=K.TYPE_KIND_ANY)
    )
    nested = one_input("x : list< list<int> >").type
    assert nested.element.element.kind == K.TYPE_KIND_INTEGER
    mapped = one_input("x : map<text, number>").type
    assert mapped.kind == K.TYPE_KIND_MAP
    assert (mapped.key.kind, mapped.value.kind) == (K.TYPE_KIND_TEXT, K.TYPE_KIND_NUMBER)
    by_enum = one_input("x : map<string, list<Cat>>", header="enum Cat = a | b\n").type
    assert by_enum.value.element == pb.TypeRef(kind=K.TYPE_KIND_ENUM, enum_name="Cat")
    enum_keys = one_input("x : map<Cat, bool>", header="enum Cat = a | b\n").type
    assert enum_keys.key == pb.TypeRef(kind=K.TYPE_KIND_ENUM, enum_name="Cat")


def test_enum_type_reference() -> None:
    field = one_input("x : Code", header="enum Code : integer = 200 | 404\n")
    assert field.type == pb.TypeRef(kind=K.TYPE_KIND_ENUM, enum_name="Code")


# --- constraints ---------------------------------------------------------------------------------

CONSTRAINTS = [
    ("number range(0, 1.5)", "minimum: 0 maximum: 1.5"),
    ("integer range(-3, 3)", "minimum: -3 maximum: 3"),
    ("number min(0)", "minimum: 0"),
    ("int max(10)", "maximum: 10"),
    ("number min(-1.5) max(2e3)", "minimum: -1.5 maximum: 2000"),
    ("text length(1, 200)", "min_length: 1 max_length: 200"),
    ('text pattern("^[A-Z]{3}$")', 'pattern: "^[A-Z]{3}$"'),
    ('string pattern("^\\d+\\.\\d*$")', 'pattern: "^\\\\d+\\\\.\\\\d*$"'),
    ('text pattern("say \\"hi\\"\\t")', 'pattern: "say \\"hi\\"\\t"'),
    ("list min_items(1)", "min_items: 1"),
    ("list<text> max_items(5)", "max_items: 5"),
    ("list<int> unique", "unique: true"),
    ("list<number> min_items(0) max_items(3) unique", "min_items: 0 max_items: 3 unique: true"),
    ("text length(0, 0)", "min_length: 0 max_length: 0"),
]


@pytest.mark.parametrize(("declaration", "expected"), CONSTRAINTS)
def test_constraints(declaration: str, expected: str) -> None:
    field = one_input(f"x : {declaration}")
    assert field.constraints == text_format.Parse(expected, pb.TypeConstraints())


def test_backslash_escapes_in_patterns() -> None:
    # JSON escapes are decoded; any other backslash pair stays, as a regex writer means it.
    field = one_input('x : text pattern("^\\d{2}\\u0041\\\\$")')  # file text: ^\d{2}\u0041\\$
    assert field.constraints.pattern == "^\\d{2}A\\$"
    assert re.fullmatch(field.constraints.pattern, "12A$")


# --- defaults, comments, required ---------------------------------------------------------------

DEFAULTS = [
    ('text = "EUR"', '"EUR"'),
    ('text = "a \\"q\\" \\u00e9"', '"a \\"q\\" é"'),
    ("integer = -3", "-3"),
    ("number = 2.5", "2.5"),
    ("number = 2", "2"),
    ("number = 1e3", "1000.0"),
    ("boolean = true", "true"),
    ("bool = false", "false"),
    ("text = null", "null"),
    ("Cat = null", "null"),
    ("list<int> = []", "[]"),
    ("list<int> = [1, 2]", "[1,2]"),
    ('object = {"a": [1, {b: null}]}', '{"a":[1,{"b":null}]}'),
    ('map<text, int> = {"x": 1}', '{"x":1}'),
    ('any = [true, "x"]', '[true,"x"]'),
    ('Cat = "b"', '"b"'),
    ('date = "2026-05-14"', '"2026-05-14"'),
]


@pytest.mark.parametrize(("declaration", "default_json"), DEFAULTS)
def test_defaults_make_a_field_optional(declaration: str, default_json: str) -> None:
    field = one_input(f"x : {declaration}", header="enum Cat = a | b\n")
    assert field.default_value_json == default_json
    assert field.required is False


def test_trailing_comment_is_the_description_and_comments_are_ignored() -> None:
    contract = parse_contract(
        """\
-- a file comment
script "s"  -- trailing comment on the script line
### Inputs ###
input  -- the inputs
  -- a comment line inside the block

  total : number min(0) = 0  -- sum of the lines -- with dashes
  code : text pattern("a--b")
### Outputs ###
output
""",
        "c.scriptum",
    )
    assert [f.name for f in contract.inputs] == ["total", "code"]
    assert contract.inputs[0].description == "sum of the lines -- with dashes"
    assert contract.inputs[1].constraints.pattern == "a--b"
    assert contract.inputs[1].description == ""
    assert contract.outputs == []


# --- enums ---------------------------------------------------------------------------------------

ENUMS = [
    ('enum E = "a" | "b"', K.TYPE_KIND_TEXT, ['"a"', '"b"']),
    ("enum E = A | B | C", K.TYPE_KIND_TEXT, ['"A"', '"B"', '"C"']),
    ('enum E = A | "b c"', K.TYPE_KIND_TEXT, ['"A"', '"b c"']),
    ("enum E = 128 | 256", K.TYPE_KIND_INTEGER, ["128", "256"]),
    ("enum E = 1 | 2.5", K.TYPE_KIND_NUMBER, ["1", "2.5"]),
    ("enum E : integer = 200 | 404", K.TYPE_KIND_INTEGER, ["200", "404"]),
    ("enum E : int64 = -1 | 0", K.TYPE_KIND_INTEGER, ["-1", "0"]),
    ("enum E : number = 1 | 2", K.TYPE_KIND_NUMBER, ["1", "2"]),
    ("enum E : double = 0.5", K.TYPE_KIND_NUMBER, ["0.5"]),
    ('enum E : text = "v1" | "v2"', K.TYPE_KIND_TEXT, ['"v1"', '"v2"']),
    ("enum E : string = v1 | v2  -- comment", K.TYPE_KIND_TEXT, ['"v1"', '"v2"']),
    ('enum E = "en"', K.TYPE_KIND_TEXT, ['"en"']),
]


@pytest.mark.parametrize(("line", "base", "values"), ENUMS)
def test_enum_forms(line: str, base: int, values: list[str]) -> None:
    contract = parse_contract(f'script "s"\n{line}\n', "e.scriptum")
    assert list(contract.enums) == [pb.EnumDef(name="E", base=base, values_json=values)]  # type: ignore[arg-type]


def test_several_enums_keep_their_order() -> None:
    contract = parse_contract('script "s"\nenum B = x\nenum A = 1\n', "e")
    assert [(e.name, e.base) for e in contract.enums] == [("B", K.TYPE_KIND_TEXT), ("A", K.TYPE_KIND_INTEGER)]


# --- header, annotations, blocks ------------------------------------------------------------------


def test_annotations_before_script() -> None:
    contract = parse_contract(
        """\
-- @accepts_content_type image/*, application/PDF
--@accepts_content_type "text/plain" image/*
-- @accepts_extension .PDF png,  *.jpeg
-- an ordinary comment

script "s"
""",
        "a.scriptum",
    )
    assert list(contract.accepted_content_types) == ["image/*", "application/pdf", "text/plain"]
    assert list(contract.accepted_extensions) == ["pdf", "png", "jpeg"]


@pytest.mark.parametrize(
    ("header", "name", "version", "description"),
    [
        ('script "a b"\n', "a b", "", ""),
        ("script invoice-parser\n", "invoice-parser", "", ""),
        ('script "s"\nversion "0.1.0"\n', "s", "0.1.0", ""),
        ('script "s"\nversion 0.1.0\n', "s", "0.1.0", ""),
        ('script "s"\nversion 2\n', "s", "2", ""),
        ('script "s"\nversion 1.0.0-rc.1+b5\n', "s", "1.0.0-rc.1+b5", ""),
        (
            'script "s"\n  Line one.\n\n  Line two: with colon -- not a comment? it is.\nversion "1"\n',
            "s",
            "1",
            "",
        ),
    ],
)
def test_script_version_description(header: str, name: str, version: str, description: str) -> None:
    declarations = parse_declarations(header, "h.scriptum")
    assert (declarations.name, declarations.version) == (name, version)
    if "Line one" in header:
        assert declarations.description == "Line one.\nLine two: with colon -- not a comment? it is."
    else:
        assert declarations.description == description


def test_all_blocks_in_order_with_tools_ignored_and_secrets_mapped_to_env() -> None:
    declarations = parse_declarations(
        """\
script "all"
enum Level = low | high
input
  q : text
output
  answer : text
stream
  progress : number range(0, 1)
  level : Level
import tools
  * from native
  web_search from mcp("search-server")
  file_glob from native
env
  LLM_API_KEY from "LLM_API_KEY"
  LLM_MODEL = "gpt-4o"
  TEMPERATURE = 0.2
  RETRIES : integer range(0, 5) = 3
  REGION : text from "AWS_REGION"
  DEBUG
secrets
  DB_PASSWORD
  TOKEN from "TENANT_TOKEN" -- a secret
do "Search" with web_search
  query = q
""",
        "all.scriptum",
    )
    contract = declarations.contract
    assert declarations.body_line == 24
    assert [f.name for f in contract.inputs] == ["q"]
    assert [f.name for f in contract.outputs] == ["answer"]
    assert [(f.name, f.type.kind) for f in contract.stream] == [
        ("progress", K.TYPE_KIND_NUMBER),
        ("level", K.TYPE_KIND_ENUM),
    ]
    env = {f.name: f for f in contract.env}
    assert list(env) == [
        "LLM_API_KEY",
        "LLM_MODEL",
        "TEMPERATURE",
        "RETRIES",
        "REGION",
        "DEBUG",
        "DB_PASSWORD",
        "TOKEN",
    ]
    assert env["LLM_API_KEY"] == pb.TypedField(
        name="LLM_API_KEY", type=pb.TypeRef(kind=K.TYPE_KIND_TEXT), required=True, env_from="LLM_API_KEY"
    )
    assert env["LLM_MODEL"] == pb.TypedField(
        name="LLM_MODEL", type=pb.TypeRef(kind=K.TYPE_KIND_TEXT), default_value_json='"gpt-4o"'
    )
    assert (env["TEMPERATURE"].type.kind, env["TEMPERATURE"].required) == (K.TYPE_KIND_NUMBER, False)
    assert env["RETRIES"].constraints.maximum == 5 and env["RETRIES"].default_value_json == "3"
    assert (env["REGION"].env_from, env["REGION"].required) == ("AWS_REGION", True)
    assert (env["DEBUG"].type.kind, env["DEBUG"].required, env["DEBUG"].env_from) == (
        K.TYPE_KIND_TEXT,
        True,
        "",
    )
    assert env["DB_PASSWORD"].required and env["TOKEN"].env_from == "TENANT_TOKEN"
    assert env["TOKEN"].description == "a secret"


def test_legacy_tools_block_and_empty_blocks() -> None:
    contract = parse_contract('script "s"\ninput\noutput\ntools\n  web_search\n  * from native\nenv\n', "t")
    assert contract == pb.ScriptContract()


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ('do "Search" with web_search\n  query = "x"\n', 4),
        ("let x = 1\n", 4),
        ('emit "Result"\n  answer = "x"\n', 4),
        ("together\n  do a\n", 4),
        ("on thread error\n  fail\n", 4),
        ("checkout_the_body_here()\n", 4),
    ],
)
def test_the_body_ends_the_declarations(body: str, line: int) -> None:
    text = f'script "s"\ninput\n  a : text\n{body}  -- indented after the body: never read\nenumerated\n'
    declarations = parse_declarations(text, "b.scriptum")
    assert declarations.body_line == line
    assert [f.name for f in declarations.contract.inputs] == ["a"]


def test_only_script_is_required_and_crlf_and_tabs_work() -> None:
    assert parse_contract('script "s"', "s") == pb.ScriptContract()
    contract = parse_contract('script "s"\r\ninput\r\n\tx : int\r\n\ty : text = "t"\r\n', "s")
    assert [f.name for f in contract.inputs] == ["x", "y"]


# --- errors: file:line:column and what was expected -------------------------------------------

H = 'script "s"\n'

ERRORS: list[tuple[str, int, int, str]] = [
    ("", 1, 1, 'expected `script "Name"`'),
    ("\n-- only comments\n", 3, 1, "the file has none"),
    ("input\n  a : text\n", 1, 1, 'expected `script "Name"`'),
    ('  script "s"\n', 1, 3, "expected `script"),
    ('script ""\n', 1, 8, "the script name is empty"),
    ("script\n", 1, 7, 'ends early; expected one of a "quoted string", a name'),
    ('script "s"\nscript "t"\n', 2, 1, "second `script` declaration (the first is at line 1)"),
    (H + "version\n", 2, 8, 'expected one of a "quoted string", a version'),
    (H + 'version ""\n', 2, 9, "the version is empty"),
    (H + "enum E = a\nversion 1\n", 3, 1, "`version` must come right after `script`"),
    (
        H + "input\n  a text\n",
        3,
        5,
        "unexpected 'text' in a field of `input` (name : type [constraints] [= default]); expected ':'",
    ),
    (H + "output\n  a :\n", 3, 6, "ends early; expected a name"),
    (H + "input\n  a : txt\n", 3, 7, "unknown type txt (expected text number integer boolean object"),
    (
        H + "enum Cat = x\ninput\n  a : Ca\n",
        4,
        7,
        "unknown type Ca (expected text number integer boolean object binary date timestamp any list<T> "
        "map<K,V>, an alias, or an enum declared before the blocks; declared enums: Cat)",
    ),
    (H + "input\n  a : list<text, text>\n", 3, 7, "list takes one element type: list<T>"),
    (H + "input\n  a : map<text>\n", 3, 7, "map takes a key and a value type: map<K, V>"),
    (H + "input\n  a : map\n", 3, 7, "map takes a key and a value type"),
    (H + "input\n  a : map<integer, text>\n", 3, 11, "map keys must be text or a text enum"),
    (H + "enum N = 1\ninput\n  a : map<N, text>\n", 4, 11, "map keys must be text or a text enum"),
    (H + "input\n  a : text<int>\n", 3, 7, "type text takes no <...> arguments"),
    (H + "input\n  a : list<text\n", 3, 16, "ends early; expected one of ',', '>'"),
    (H + "input\n  a : text = 5\n", 3, 14, "default of a: 5 does not fit type text"),
    (H + "input\n  a : integer = 1.5\n", 3, 17, "default of a: 1.5 does not fit type integer"),
    (H + 'input\n  a : number = "1"\n', 3, 16, 'default of a: "1" does not fit type number'),
    (H + "input\n  a : boolean = 1\n", 3, 17, "does not fit type boolean"),
    (H + 'input\n  a : list<int> = [1, "x"]\n', 3, 19, '"x" does not fit type integer'),
    (H + "input\n  a : list<int> = {}\n", 3, 19, "{} does not fit type list<integer>"),
    (H + 'input\n  a : map<text, int> = {"k": true}\n', 3, 24, "true does not fit type integer"),
    (H + "input\n  a : object = []\n", 3, 16, "[] does not fit type object"),
    (H + 'enum Cat = x\ninput\n  a : Cat = "y"\n', 4, 13, '"y" is not one of enum Cat\'s values'),
    (
        H + "input\n  a : integer = \n",
        3,
        16,
        "ends early; expected one of '[', 'false', 'null', 'true', '{', a \"quoted string\", a number",
    ),
    (H + 'input\n  a : text = "x" extra\n', 3, 18, "unexpected 'extra'"),
    (H + 'input\n  a : text = "x\n', 3, 14, "unterminated string"),
    (H + "input\n  a : text ; b\n", 3, 12, "unexpected character ';'"),
    (
        H + "input\n  a : text range(1, 2)\n",
        3,
        12,
        "constraint range applies to number or integer fields, not text",
    ),
    (
        H + "input\n  a : integer length(1, 2)\n",
        3,
        15,
        "constraint length applies to text fields, not integer",
    ),
    (
        H + "input\n  a : Cat unique\n".replace("input", "enum Cat = x\ninput"),
        4,
        11,
        "unique applies to list fields, not enum Cat",
    ),
    (
        H + "input\n  a : map<text, int> min_items(1)\n",
        3,
        22,
        "applies to list fields, not map<text, integer>",
    ),
    (H + "input\n  a : integer range(3, 2)\n", 3, 24, "constraint range: max 2 is below min 3"),
    (H + "input\n  a : integer min(5) max(1)\n", 3, 22, "max 1 is below min 5"),
    (
        H + "input\n  a : text lenght(1, 2)\n",
        3,
        12,
        "unknown constraint lenght (expected one of range, min, max, length, pattern, min_items, "
        "max_items, unique)",
    ),
    (H + "input\n  a : text length(1)\n", 3, 12, "constraint length takes 2 argument(s): length(min, max)"),
    (H + "input\n  a : text length(-1, 2)\n", 3, 19, "takes whole numbers >= 0, not -1"),
    (H + 'input\n  a : text length("1", 2)\n', 3, 19, 'constraint length takes numbers, not "1"'),
    (H + "input\n  a : text pattern(1)\n", 3, 20, "pattern takes a quoted regular expression"),
    (H + 'input\n  a : text pattern("(")\n', 3, 20, "pattern '(' is not a valid regular expression"),
    (H + "input\n  a : text pattern()\n", 3, 12, 'constraint pattern takes 1 argument(s): pattern("regex")'),
    (H + "input\n  a : list unique()\n", 3, 12, "constraint unique takes no arguments"),
    (H + "input\n  a : list min_items(1.5)\n", 3, 22, "takes whole numbers >= 0, not 1.5"),
    (H + "input\n  a : list min_items(3) max_items(1)\n", 3, 25, "max_items 1 is below min_items 3"),
    (H + "input\n  a : integer min(1) range(0, 3)\n", 3, 22, "constraint range repeats a bound"),
    (H + "input\n  a : integer min(1) min(2)\n", 3, 22, "constraint min repeats a bound"),
    (H + "input\n  a : text\n  a : integer\n", 4, 3, "a is declared twice in input"),
    (H + 'env\n  K = "x"\nsecrets\n  K\n', 5, 3, "K is declared twice in env (env and secrets)"),
    (
        H + "input\n  a : text\n    b : text\n",
        4,
        1,
        "inconsistent indentation in block `input`: its first line is indented by 2 character(s), "
        "this one by 4",
    ),
    (H + "  desc\nversion 1\n  x : text\n", 4, 1, "unexpected indented line"),
    (
        H + "output\n  a : text\ninput\n  b : text\n",
        4,
        1,
        "block `input` must come before `output` (line 2): blocks go in the order input, output, "
        "stream, import tools, env, secrets",
    ),
    (H + "env\nimport tools\n", 3, 1, "block `import tools` must come before `env`"),
    (H + "secrets\nenv\n", 3, 1, "block `env` must come before `secrets`"),
    (H + "import tools\ntools\n", 3, 1, "block `tools` appears twice (first at line 2)"),
    (H + "input\ninput\n", 3, 1, "block `input` appears twice (first at line 2)"),
    (H + "input -x\n", 2, 7, "unexpected character '-' in the block header"),
    (H + "inputs\n  a : text\n", 2, 1, "unknown block `inputs` (blocks: input, output"),
    (
        H + "Classifies one receipt.\ninput\n  a : text\n",
        3,
        1,
        "`input` declaration after the script body started at line 2 ('Classifies one receipt.')",
    ),
    (H + 'do "x"\nenum E = a\n', 3, 1, "`enum` declaration after the script body started at line 2"),
    (H + "input\n  a : text\nenum E = a\n", 4, 1, "`enum` declarations must come before the blocks"),
    (H + 'enum E = "a" | 1\n', 2, 16, "enum E mixes text and numeric variants"),
    (H + "enum E = 1 | a\n", 2, 14, "enum E mixes text and numeric variants"),
    (H + "enum E : integer = 1 | 1.5\n", 2, 24, "enum E is integer but variant 1.5 is not an integer"),
    (H + "enum E : text = 1\n", 2, 17, "enum E is text but variant 1 is a number (quote it)"),
    (H + "enum E : number = x\n", 2, 19, "enum E is number but variant x is text"),
    (
        H + "enum E : boolean = 1\n",
        2,
        10,
        "enum base type must be text, integer or number (or an alias), not boolean",
    ),
    (H + "enum E = a | a\n", 2, 14, "enum E lists a twice"),
    (H + "enum E = 1 | 1.0\n", 2, 14, "enum E lists 1.0 twice"),
    (H + "enum E = a\nenum E = b\n", 3, 6, "enum E is declared twice"),
    (H + "enum list = a\n", 2, 6, "enum name list is a built-in type name"),
    (H + "enum E\n", 2, 7, "ends early; expected one of ':', '='"),
    (H + "enum E =\n", 2, 9, "ends early"),
    (
        H + "env\n  KEY from VAR\n",
        3,
        12,
        'unexpected \'VAR\' in an env line (KEY from "VAR", KEY = "literal" or KEY : type); '
        'expected a "quoted string"',
    ),
    (H + 'env\n  KEY from ""\n', 3, 12, "env source variable name is empty"),
    (H + 'env\n  KEY "x"\n', 3, 7, "expected one of ':', '=', 'from', a -- comment, end of line"),
    (H + "env\n  KEY = \n", 3, 8, "ends early"),
    (H + "import tools\n  x y\n", 3, 5, "unexpected 'y' in a tool import"),
    ("-- @accepts_extension\n" + H, 1, 4, "@accepts_extension needs at least one value"),
    (
        "-- @accept_extension pdf\n" + H,
        1,
        4,
        "unknown annotation @accept_extension (known: @accepts_content_type, @accepts_extension)",
    ),
    ("-- @accepts_content_type image\n" + H, 1, 4, "'image' is not a content type like image/png or image/*"),
    ("-- @accepts_extension a/b\n" + H, 1, 4, "'a/b' is not a file extension"),
    (H + "-- @accepts_extension pdf\n", 2, 1, "@accepts_extension must come before `script`"),
    (
        H + "input\n  -- @accepts_content_type text/plain\n",
        3,
        3,
        "@accepts_content_type must come before `script`",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "column", "message"), ERRORS, ids=[f"{i}" for i in range(len(ERRORS))]
)
def test_error_positions(text: str, line: int, column: int, message: str) -> None:
    error = error_of(text)
    assert isinstance(error, ValueError)
    assert (error.line, error.column) == (line, column), str(error)
    assert str(error).startswith(f"bad.scriptum:{line}:{column}: "), str(error)
    assert message in error.message, str(error)
    assert error.filename == "bad.scriptum"


def test_error_is_picklable_and_a_bom_is_ignored() -> None:
    error = error_of(H + "input\n  a : txt\n")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.line, copy.column, copy.filename) == (str(error), 3, 7, "bad.scriptum")
    assert parse_declarations('\ufeffscript "s"\n', "bom.scriptum").name == "s"


def test_error_column_points_at_the_offending_text() -> None:
    text = H + "output\n  total : number min(0)\n  lines : list<objet>\n"
    error = error_of(text)
    source_line = text.splitlines()[error.line - 1]
    assert source_line[error.column - 1 :].startswith("objet")


# --- the example suite's contracts ----------------------------------------------------------------


def _version_contract(version: int) -> dict[str, Any]:
    path = SCRIPT / f"v{version}" / "contract.scriptum"
    declarations = parse_declarations(path.read_text(encoding="utf-8"), str(path))
    assert declarations.name == "invoice-parser"
    assert declarations.body_line is None
    return json_format.MessageToDict(declarations.contract, preserving_proto_field_name=True)


def _tenant_env_keys() -> set[str]:
    keys = set()
    for raw in (SUITE / "seed" / "tenant.env").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keys.add(line.split("=", 1)[0].strip())
    return keys


def _smoke_cases() -> list[dict[str, Any]]:
    return [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted((SUITE / "smoke" / "cases").glob("*.json"))
    ]


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_example_suite_contract_parses_and_requires_only_existing_env(version: int) -> None:
    contract = _version_contract(version)
    required_env = {f.get("env_from") or f["name"] for f in contract.get("env", []) if f.get("required")}
    assert required_env <= _tenant_env_keys()
    inputs = Draft202012Validator(contract_json_schema(contract, "inputs"))
    for case in _smoke_cases():
        has_text = isinstance(case["input"].get("text"), str)
        expected_ok = has_text and (version >= 3 or "locale" not in case["input"])
        assert inputs.is_valid(case["input"]) == expected_ok, (version, case["id"])


@pytest.mark.parametrize("version", [3, 4, 5])
def test_example_suite_outputs_match_the_former_info_yaml_schema(version: int) -> None:
    contract = _version_contract(version)
    assert [f["name"] for f in contract["env"]] == ["DB_HOST", "MODEL"]
    outputs = Draft202012Validator(
        contract_json_schema(contract, "outputs"), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    exact = next(case for case in _smoke_cases() if case["id"] == "exact-gbp")
    good = exact["expect"]["output"]
    assert outputs.is_valid(good)
    assert outputs.is_valid({**good, "model": None})  # a thread without env
    for bad in (
        {**good, "invoice_no": "1009"},
        {**good, "currency": "gbp"},
        {**good, "total": -1},
        {**good, "lines": {}},
        {**good, "balanced": "yes"},
        {**good, "model": 4},
        {key: value for key, value in good.items() if key != "db_configured"},
        {**good, "db_host": "db.fake-tenant.invalid"},
    ):
        assert not outputs.is_valid(bad), bad
    inputs = contract_json_schema(contract, "inputs")
    assert inputs["properties"]["locale"] == {
        "enum": ["en"],
        "default": "en",
        "description": "only English amounts (1,234.50) are understood",
    }
    assert not Draft202012Validator(inputs).is_valid({"text": "x", "locale": "de"})


# --- property: what a generated declaration says is what the parser reads ----------------------

_TYPE_SPELLINGS = st.sampled_from(ALIASES)
_NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)


@st.composite
def declarations(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(_NAMES)
    spelling, kind = draw(_TYPE_SPELLINGS)
    as_list = draw(st.booleans())
    expected: dict[str, Any] = {"name": name, "kind": kind, "list": as_list}
    text = f"{name} : " + (f"list<{spelling}>" if as_list else spelling)
    if as_list and draw(st.booleans()):
        low = draw(st.integers(0, 5))
        text += f" min_items({low}) max_items({low + draw(st.integers(0, 5))})"
        expected["min_items"] = low
    elif not as_list and kind in (K.TYPE_KIND_NUMBER, K.TYPE_KIND_INTEGER) and draw(st.booleans()):
        low = draw(st.integers(-100, 100))
        text += f" range({low}, {low + draw(st.integers(0, 100))})"
        expected["minimum"] = low
    elif not as_list and kind == K.TYPE_KIND_TEXT and draw(st.booleans()):
        text += f" length(0, {draw(st.integers(0, 50))})"
        expected["min_length"] = 0
    default = draw(st.sampled_from([None, "null"] + (["[]"] if as_list else [])))
    if default is not None:
        text += f" = {default}"
    expected["default"] = default
    comment = draw(st.sampled_from(["", "note", "a -- b"]))
    if comment:
        text += f"  -- {comment}"
    expected["comment"] = comment
    return text, expected


@settings(max_examples=200, deadline=None)
@given(
    st.lists(declarations(), min_size=1, max_size=6, unique_by=lambda d: d[1]["name"]),
    st.sampled_from([" ", "  ", "\t"]),
)
def test_generated_declarations_read_back(fields: list[tuple[str, dict[str, Any]]], indent: str) -> None:
    text = 'script "p"\noutput\n' + "".join(f"{indent}{line}\n" for line, _ in fields)
    contract = parse_contract(text, "p.scriptum")
    assert len(contract.outputs) == len(fields)
    for parsed, (_, expected) in zip(contract.outputs, fields, strict=True):
        assert parsed.name == expected["name"]
        kind = parsed.type.element.kind if expected["list"] else parsed.type.kind
        assert kind == expected["kind"]
        assert parsed.required == (expected["default"] is None)
        assert parsed.default_value_json == (
            json.dumps(json.loads(expected["default"])) if expected["default"] else ""
        )
        assert parsed.description == expected["comment"]
        if "min_items" in expected:
            assert parsed.constraints.min_items == expected["min_items"]
        if "minimum" in expected:
            assert parsed.constraints.minimum == expected["minimum"]
        if "min_length" in expected:
            assert parsed.constraints.HasField("min_length")
    schema = contract_json_schema(
        json_format.MessageToDict(contract, preserving_proto_field_name=True), "outputs"
    )
    Draft202012Validator.check_schema(schema)
    assert schema["required"] == [e["name"] for _, e in fields if e["default"] is None]
