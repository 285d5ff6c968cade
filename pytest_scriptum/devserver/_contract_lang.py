"""Parser of the declaration part of a ``.scriptum`` file into a ``ScriptContract``.

Sources: the language docs' file skeleton and type pages as summarised in
``scriptum-api-facts.md`` section 5.2/5.3 (docs.dodil.io/scriptum/language/structure,
/language/types, /language/types/constraints). What is read, in this order::

    -- @accepts_content_type image/*, application/pdf
    -- @accepts_extension pdf, .png
    script "receipt-classifier"
      Free-text description lines, indented under `script`.
    version "1.0.0"
    enum Category = "food" | "travel" | other
    enum HttpStatus : integer = 200 | 404
    input
      merchant : text length(1, 200) = "?"  -- a comment becomes the field's description
    output
      ...
    stream
      ...
    import tools
      * from native
    env
      OPENAI_API_KEY from "OPENAI_API_KEY"
      MODEL = "gpt-4.1"
    secrets
      ...
    do "First step" with llm       <- the body: the declarations end here

* Annotations (0..n) come before ``script``: values separated by commas and/or blanks; content
  types are lower-cased (globs like ``image/*``), extensions lower-cased without a leading dot.
* ``script`` is required (a quoted or bare name); description lines, ``version`` (quoted or bare)
  and ``enum`` lines are optional, in that order; then the blocks, each optional and at most once,
  in the order input, output, stream, import tools (legacy ``tools``), env, secrets. Field lines
  are indented (consistently within a block; no nesting).
* Enums: variants are quoted strings, bare words (text) or numbers; the base is inferred (text,
  integer, or number when any variant has a fraction) or explicit (``: text``, ``: integer``,
  ``: number`` or an alias); text and numeric variants never mix; no duplicates.
* Field line: ``name : type [constraints] [= default] [-- comment]``; no default => required.
  Types: text (string), number (float, double), integer (int, int32, int64, long), boolean
  (bool), object, binary, date, timestamp (datetime), any (value), ``list<T>``, bare ``list`` =
  ``list<any>``, ``map<K,V>`` (K: text or a text enum, as JSON keys are strings), enum names.
  Constraints: ``range(min,max) min(n) max(n)`` on number/integer, ``length(min,max)
  pattern("re")`` on text, ``min_items(n) max_items(n) unique`` on lists. A default must fit the
  type; ``= null`` is allowed on any type and means the value may be null.
* Env line: ``KEY from "VAR"`` (required: the thread reads tenant variable VAR as KEY; VAR is
  recorded in ``TypedField.env_from``, which is empty when the key reads itself), ``KEY =
  "literal"`` (optional; the literal is the default and gives the type), ``KEY : type
  [constraints] [from "VAR"] [= default]`` and a bare ``KEY`` (required text). An env field
  without a default is *required*: preflight requires tenant key ``env_from or name``.
* ``import tools`` / legacy ``tools`` lines (``* from native``, ``web_search from mcp("x")``, a
  bare ``web_search``) are checked for that syntax and dropped: tools are not part of the
  ``ScriptContract``.
* Legacy ``secrets``: its lines have the env line syntax and are **mapped to env** (a secret is an
  env key the script needs; a bare ``API_KEY`` there is a required env key), after the ``env``
  block's keys; a key in both blocks is an error.
* ``--`` comments and ``### Title ###`` separators may appear on any line and are ignored.

Deliberate differences from the platform, each because silence would hide a mistake:

* The docs say a misplaced block is *skipped*; here it is an error naming the line (a skipped
  ``input`` block would make every input optional without anyone noticing).
* An unknown ``-- @annotation`` before ``script``, or an annotation after it, is an error (a typo
  such as ``@accept_extension`` would silently lift a restriction).
* The declarations end at the first top-level (unindented) line that is not a declaration
  construct: that is the body (``do``, ``let``, ``emit``, ...), which this parser does not read.
  A declaration keyword line (``input``, ``env``, ``enum`` ...) *after* the body started is an
  error: it usually means an unindented description line ended the declarations early. A lone
  word on a top-level line that is no step verb (``inputs``) is an error too (a misspelt block
  would otherwise end the declarations silently).
* Regular expressions (``pattern``) must compile with Python's ``re`` (what jsonschema uses to
  check them); a backslash in a string before a character other than ``" \\ / b f n r t u``
  is kept as is, so ``pattern("^\\d+$")`` means what a regex writer expects.

Each line is parsed with a lark LALR grammar (one start rule per line kind); the line structure
(indentation, block order) is handled here, which keeps both the grammar and the diagnostics
simple. Every mistake raises :class:`ContractSyntaxError` naming ``file:line:column`` and what was
expected, like the platform's compile diagnostics.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeAlias

import lark
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from pytest_scriptum._proto import scriptum_pb2 as pb

__all__ = ["ContractDeclarations", "ContractSyntaxError", "parse_contract", "parse_declarations"]


class ContractSyntaxError(ValueError):
    """A mistake in a ``.scriptum`` declaration: ``str(exc)`` is ``file:line:column: message``.

    ``line`` and ``column`` are 1-based; ``column`` counts characters (a tab is one).
    """

    def __init__(self, filename: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{filename}:{line}:{column}: {message}")
        self.filename = filename
        self.line = line
        self.column = column
        self.message = message

    def __reduce__(self) -> tuple[type[ContractSyntaxError], tuple[str, int, int, str]]:
        # Picklable (e.g. across a process pool), although __init__ takes four arguments.
        return (type(self), (self.filename, self.line, self.column, self.message))


@dataclass(frozen=True)
class ContractDeclarations:
    """Everything the declaration part says; only ``contract`` has a place in the proto."""

    contract: pb.ScriptContract
    name: str
    description: str = ""
    version: str = ""
    # 1-based line where the body starts (the first line after the declarations), or None.
    body_line: int | None = None


def parse_contract(text: str, filename: str) -> pb.ScriptContract:
    """The ``ScriptContract`` declared by ``text`` (a ``.scriptum`` file's content).

    ``filename`` only names the file in error messages. Raises :class:`ContractSyntaxError`.
    """
    return parse_declarations(text, filename).contract


def parse_declarations(text: str, filename: str) -> ContractDeclarations:
    """Like :func:`parse_contract`, with the script's name, description, version and body line."""
    return _Parser(text, filename).parse()


# ---------------------------------------------------------------------------------------------
# Grammar: one start rule per kind of line. The whole physical line is parsed (leading blanks are
# ignored), so lark's columns are the file's columns.
# ---------------------------------------------------------------------------------------------

_GRAMMAR: Final = r"""
script_line: "script" (STRING | BARE_NAME) COMMENT?
version_line: "version" (STRING | BARE_VERSION) COMMENT?
enum_line: "enum" NAME (":" NAME)? "=" variant ("|" variant)* COMMENT?
block_line: BLOCK COMMENT?
field_line: NAME ":" type constraint* default? COMMENT?
env_line: NAME (":" type constraint*)? env_from? default? COMMENT?
tool_line: (NAME | "*") ("from" NAME ("(" [arg ("," arg)*] ")")?)? COMMENT?

variant: STRING | SIGNED_NUMBER | NAME
type: NAME ("<" type ("," type)? ">")?
constraint: NAME ("(" [arg ("," arg)*] ")")?
?arg: STRING | SIGNED_NUMBER
env_from: "from" STRING
default: "=" literal

?literal: STRING                          -> string
        | SIGNED_NUMBER                   -> number
        | "true"                          -> true
        | "false"                         -> false
        | "null"                          -> null
        | "[" [literal ("," literal)*] "]" -> array
        | "{" [pair ("," pair)*] "}"       -> object
pair: (STRING | NAME) ":" literal

BLOCK: /import[ \t]+tools|input|output|stream|tools|env|secrets/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
BARE_NAME: /[A-Za-z0-9_][A-Za-z0-9_.-]*/
BARE_VERSION: /[0-9A-Za-z][0-9A-Za-z.+_-]*/
STRING: /"(?:[^"\\\n]|\\.)*"/
SIGNED_NUMBER: /[+-]?(?:[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)/
COMMENT: /--[^\n]*/
%ignore /[ \t]+/
"""

_STARTS: Final = (
    "script_line",
    "version_line",
    "enum_line",
    "block_line",
    "field_line",
    "env_line",
    "tool_line",
)


def _grammar_cache() -> str | bool:
    """Where lark may keep the built LALR tables between server starts, or False for no cache.

    Building them was most of the server's own import time. lark's own default (``cache=True``)
    is a predictable file in the shared temporary directory that it unpickles *before* checking
    the grammar's hash: a file planted there by another local user would run code in the server.
    So the cache lives only in a per-user directory that is the user's own and not writable by
    anyone else (``$XDG_CACHE_HOME/pytest-scriptum``, else ``~/.cache/pytest-scriptum``, created
    0700); otherwise there is no cache. lark rebuilds (and rewrites) a cache it cannot read or
    whose grammar hash differs, so a stale or half-written file costs one rebuild.
    """
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # no POSIX ownership to check
        return False
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        directory = base / "pytest-scriptum"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.lstat()
    except (OSError, RuntimeError):  # no home directory, read-only file system, ...
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != getuid() or info.st_mode & 0o022:
        return False
    return str(directory / f"contract-grammar-lark-{lark.__version__}.pickle")


_LARK: Final = Lark(
    _GRAMMAR,
    parser="lalr",
    lexer="contextual",
    start=list(_STARTS),
    propagate_positions=True,
    cache=_grammar_cache(),
)

# How lark's terminal names read in "expected ..." messages.
_TERMINAL_TEXT: Final = {
    "NAME": "a name",
    "BARE_NAME": "a name",
    "BARE_VERSION": "a version",
    "STRING": 'a "quoted string"',
    "SIGNED_NUMBER": "a number",
    "COMMENT": "a -- comment",
    "BLOCK": "a block name",
    "COLON": "':'",
    "EQUAL": "'='",
    "VBAR": "'|'",
    "LESSTHAN": "'<'",
    "MORETHAN": "'>'",
    "COMMA": "','",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "FROM": "'from'",
    "TRUE": "'true'",
    "FALSE": "'false'",
    "NULL": "'null'",
    "SCRIPT": "'script'",
    "VERSION": "'version'",
    "ENUM": "'enum'",
    "STAR": "'*'",
    "$END": "end of line",
}

# ---------------------------------------------------------------------------------------------
# Types and constraints
# ---------------------------------------------------------------------------------------------

K = pb.TypeKind
_Kind: TypeAlias = pb.TypeKind.ValueType
_PRIMITIVES: Final[dict[str, _Kind]] = {
    "text": K.TYPE_KIND_TEXT, "string": K.TYPE_KIND_TEXT,
    "number": K.TYPE_KIND_NUMBER, "float": K.TYPE_KIND_NUMBER, "double": K.TYPE_KIND_NUMBER,
    "integer": K.TYPE_KIND_INTEGER, "int": K.TYPE_KIND_INTEGER, "int32": K.TYPE_KIND_INTEGER,
    "int64": K.TYPE_KIND_INTEGER, "long": K.TYPE_KIND_INTEGER,
    "boolean": K.TYPE_KIND_BOOLEAN, "bool": K.TYPE_KIND_BOOLEAN,
    "object": K.TYPE_KIND_OBJECT,
    "binary": K.TYPE_KIND_BINARY,
    "date": K.TYPE_KIND_DATE,
    "timestamp": K.TYPE_KIND_TIMESTAMP, "datetime": K.TYPE_KIND_TIMESTAMP,
    "any": K.TYPE_KIND_ANY, "value": K.TYPE_KIND_ANY,
}  # fmt: skip
_GENERICS: Final = ("list", "map")
_TYPE_NAMES: Final = "text number integer boolean object binary date timestamp any list<T> map<K,V>"
_ENUM_BASES: Final = {
    name: kind
    for name, kind in _PRIMITIVES.items()
    if kind in (K.TYPE_KIND_TEXT, K.TYPE_KIND_NUMBER, K.TYPE_KIND_INTEGER)
}
_NUMERIC: Final = (K.TYPE_KIND_NUMBER, K.TYPE_KIND_INTEGER)

# Constraint name -> (argument count, kinds it applies to, what those kinds are called).
_CONSTRAINTS: Final[dict[str, tuple[int, tuple[_Kind, ...], str]]] = {
    "range": (2, _NUMERIC, "number or integer"),
    "min": (1, _NUMERIC, "number or integer"),
    "max": (1, _NUMERIC, "number or integer"),
    "length": (2, (K.TYPE_KIND_TEXT,), "text"),
    "pattern": (1, (K.TYPE_KIND_TEXT,), "text"),
    "min_items": (1, (K.TYPE_KIND_LIST,), "list"),
    "max_items": (1, (K.TYPE_KIND_LIST,), "list"),
    "unique": (0, (K.TYPE_KIND_LIST,), "list"),
}

_ANNOTATION: Final = re.compile(r"--\s*@(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>.*)$")
_CONTENT_TYPE: Final = re.compile(r"(?:\*|[a-z0-9][a-z0-9!#$&^_.+-]*)/(?:\*|[a-z0-9][a-z0-9!#$&^_.+-]*)")
_EXTENSION: Final = re.compile(r"[a-z0-9][a-z0-9_+-]*(?:\.[a-z0-9_+-]+)*")
_DECLARATION_WORDS: Final = (
    "script",
    "version",
    "enum",
    "input",
    "output",
    "stream",
    "import",
    "tools",
    "env",
    "secrets",
)
# Block keyword -> its rank in the documented order (legacy spellings share their rank).
_BLOCK_ORDER: Final = {
    "input": 0,
    "output": 1,
    "stream": 2,
    "import tools": 3,
    "tools": 3,
    "env": 4,
    "secrets": 5,
}
# Step verbs of the body (facts sheet 5.4; `on thread error`): a lone one of these starts the body.
_BODY_VERBS: Final = frozenset(
    "do let each decide check together pipe repeat wait agent ask plan run emit yield send on".split()
)
_LONE_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BLOCK_SEQUENCE: Final = "input, output, stream, import tools, env, secrets"
_ESCAPES: Final = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass
class _Line:
    number: int  # 1-based
    text: str  # without the line break
    indent: str  # leading blanks

    @property
    def content(self) -> str:
        return self.text[len(self.indent) :]

    @property
    def first_word(self) -> str:
        match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", self.content)
        return match.group() if match else ""


@dataclass
class _Block:
    keyword: str
    line: _Line
    # Each declared field with the line it was read from (for duplicate-name errors).
    fields: list[tuple[pb.TypedField, _Line]] = field(default_factory=list)
    indent: str | None = None


def _lines(text: str) -> Iterator[_Line]:
    # An editor's byte order mark is not part of the first line.
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        stripped = raw.lstrip(" \t")
        yield _Line(number, raw.rstrip(), raw[: len(raw) - len(stripped)])


def _is_blank_or_comment(line: _Line) -> bool:
    content = line.content
    return not content or content.startswith("--") or content.startswith("###")


def _unquote(token: Token | str) -> str:
    """A STRING token's value: JSON escapes decoded, any other backslash pair kept as written."""
    body = str(token)[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            nxt = body[index + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                index += 2
                continue
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[index + 2 : index + 6]):
                out.append(chr(int(body[index + 2 : index + 6], 16)))
                index += 6
                continue
        out.append(char)
        index += 1
    return "".join(out)


class _Parser:
    def __init__(self, text: str, filename: str) -> None:
        self.filename = filename
        self.lines = list(_lines(text))
        self.enums: dict[str, pb.EnumDef] = {}
        self.content_types: list[str] = []
        self.extensions: list[str] = []

    # -- errors --------------------------------------------------------------------------------

    def error(self, line: _Line | int, column: int, message: str) -> ContractSyntaxError:
        number = line.number if isinstance(line, _Line) else line
        return ContractSyntaxError(self.filename, number, column, message)

    def at(self, line: _Line, token: Token, message: str) -> ContractSyntaxError:
        return self.error(line, token.column or 1, message)

    def grammar(self, line: _Line, start: str, what: str) -> Tree[Token]:
        try:
            return _LARK.parse(line.text, start=start)
        except UnexpectedInput as exc:
            raise self._syntax_error(line, exc, what) from None

    def _syntax_error(self, line: _Line, exc: UnexpectedInput, what: str) -> ContractSyntaxError:
        if isinstance(exc, UnexpectedCharacters):
            column = exc.column
            char = line.text[column - 1] if 0 < column <= len(line.text) else ""
            if char == '"':
                return self.error(line, column, f"unterminated string in {what}")
            expected = self._expected(exc.allowed)
            return self.error(line, column, f"unexpected character {char!r} in {what}; expected {expected}")
        if isinstance(exc, UnexpectedToken):
            token = exc.token
            # `accepts` replays the parser, so LALR's default reductions do not leak terminals of
            # other contexts (such as ']' after a plain default) into the message.
            expected = self._expected(exc.accepts or exc.expected)
            if token.type == "$END":
                return self.error(line, len(line.text) + 1, f"{what} ends early; expected {expected}")
            return self.error(
                line, token.column or 1, f"unexpected {str(token)!r} in {what}; expected {expected}"
            )
        if isinstance(exc, UnexpectedEOF):  # pragma: no cover - LALR reports $END as UnexpectedToken
            return self.error(line, len(line.text) + 1, f"{what} ends early")
        return self.error(line, 1, f"cannot read {what}")  # pragma: no cover

    @staticmethod
    def _expected(names: set[str] | frozenset[str] | None) -> str:
        readable = sorted({_TERMINAL_TEXT.get(name, name.lower()) for name in names or ()})
        if not readable:
            return "nothing more"
        if len(readable) == 1:
            return readable[0]
        return "one of " + ", ".join(readable)

    # -- the file ------------------------------------------------------------------------------

    def parse(self) -> ContractDeclarations:
        lines = self.lines
        index = self._annotations()
        script_line = self._next_significant(index)
        if script_line is None:
            raise self.error(len(lines) + 1 if lines else 1, 1, 'expected `script "Name"`; the file has none')
        if script_line.indent or script_line.first_word != "script":
            raise self.error(
                script_line,
                len(script_line.indent) + 1,
                f'expected `script "Name"` (after optional -- @annotations), '
                f"found {script_line.content[:40]!r}",
            )
        name = self._script_name(script_line)
        index = lines.index(script_line) + 1

        description: list[str] = []
        while index < len(lines) and (lines[index].indent or not lines[index].content):
            line = lines[index]
            if line.content and not _is_blank_or_comment(line):
                description.append(line.content)
            index += 1

        version = ""
        stage = 0  # 0: version allowed, 1: enums allowed, 2: blocks
        blocks: list[_Block] = []
        body_line: int | None = None
        current: _Block | None = None
        while index < len(lines):
            line = lines[index]
            index += 1
            if _is_blank_or_comment(line):
                self._reject_late_annotation(line)
                continue
            if line.indent:
                if current is None:
                    raise self.error(
                        line,
                        1,
                        "unexpected indented line: field lines belong under a block "
                        "(input, output, stream, env) and description lines directly under `script`",
                    )
                self._block_line(current, line)
                continue
            current = None
            word = line.first_word
            if word not in _DECLARATION_WORDS:
                self._reject_unknown_block(line)
                body_line = line.number
                self._reject_declarations_after_body(index, line)
                break
            if word == "script":
                raise self.error(
                    line, 1, f"second `script` declaration (the first is at line {script_line.number})"
                )
            if word == "version":
                if stage > 0:
                    raise self.error(
                        line,
                        1,
                        "`version` must come right after `script` and its description, "
                        "before enums and blocks",
                    )
                version = self._version(line)
                stage = 1
            elif word == "enum":
                if stage > 1:
                    raise self.error(
                        line, 1, f"`enum` declarations must come before the blocks ({_BLOCK_SEQUENCE})"
                    )
                self._enum(line)
                stage = 1
            else:
                current = self._block_header(line, blocks)
                blocks.append(current)
                stage = 2

        contract = self._contract(blocks)
        return ContractDeclarations(contract, name, "\n".join(description), version, body_line)

    def _next_significant(self, index: int) -> _Line | None:
        for line in self.lines[index:]:
            if not _is_blank_or_comment(line):
                return line
        return None

    def _annotations(self) -> int:
        """Reads the `-- @...` lines before `script`; returns the index of the first other line."""
        for index, line in enumerate(self.lines):
            if not _is_blank_or_comment(line):
                return index
            match = _ANNOTATION.match(line.content)
            if match is None:
                continue
            column = len(line.indent) + match.start("name")
            name = match.group("name")
            values = [v.strip('"').strip("'") for v in re.split(r"[\s,]+", match.group("rest")) if v]
            if not values:
                raise self.error(line, column, f"@{name} needs at least one value")
            if name == "accepts_content_type":
                for value in values:
                    lowered = value.lower()
                    if not _CONTENT_TYPE.fullmatch(lowered):
                        raise self.error(
                            line,
                            column,
                            f"@accepts_content_type: {value!r} is not a content type "
                            "like image/png or image/*",
                        )
                    if lowered not in self.content_types:
                        self.content_types.append(lowered)
            elif name == "accepts_extension":
                for value in values:
                    lowered = value.lower().removeprefix("*").removeprefix(".")
                    if not _EXTENSION.fullmatch(lowered):
                        raise self.error(
                            line,
                            column,
                            f"@accepts_extension: {value!r} is not a file extension like pdf or .png",
                        )
                    if lowered not in self.extensions:
                        self.extensions.append(lowered)
            else:
                raise self.error(
                    line,
                    column,
                    f"unknown annotation @{name} (known: @accepts_content_type, @accepts_extension)",
                )
        return len(self.lines)

    def _reject_late_annotation(self, line: _Line) -> None:
        match = _ANNOTATION.match(line.content)
        if match is not None and match.group("name") in ("accepts_content_type", "accepts_extension"):
            raise self.error(
                line,
                len(line.indent) + 1,
                f"@{match.group('name')} must come before `script`, at the top of the file",
            )

    def _reject_unknown_block(self, line: _Line) -> None:
        """A lone word that is no body verb is a misspelt block (`inputs`), not the body's start."""
        word = line.content.split("--")[0].strip()
        if _LONE_WORD.fullmatch(word) and word not in _BODY_VERBS:
            raise self.error(
                line,
                1,
                f"unknown block `{word}` (blocks: {_BLOCK_SEQUENCE}; the body starts with a step such as "
                "do, let or emit)",
            )

    def _reject_declarations_after_body(self, index: int, body: _Line) -> None:
        for line in self.lines[index:]:
            if line.indent or _is_blank_or_comment(line):
                continue
            word = line.first_word
            is_block = " ".join(line.content.split("--")[0].split()) in _BLOCK_ORDER
            if word in ("script", "version", "enum") or is_block:
                raise self.error(
                    line,
                    1,
                    f"`{line.content.split()[0]}` declaration after the script body started "
                    f"at line {body.number} ({body.content[:40]!r}); declarations come first, and "
                    "description lines must be indented under `script`",
                )

    # -- header lines --------------------------------------------------------------------------

    def _script_name(self, line: _Line) -> str:
        tree = self.grammar(line, "script_line", "the script line")
        token = tree.children[0]
        assert isinstance(token, Token)
        name = _unquote(token) if token.type == "STRING" else str(token)
        if not name.strip():
            raise self.at(line, token, "the script name is empty")
        return name

    def _version(self, line: _Line) -> str:
        tree = self.grammar(line, "version_line", "the version line")
        token = tree.children[0]
        assert isinstance(token, Token)
        version = _unquote(token) if token.type == "STRING" else str(token)
        if not version.strip():
            raise self.at(line, token, "the version is empty")
        return version

    def _enum(self, line: _Line) -> None:
        tree = self.grammar(line, "enum_line", "the enum declaration")
        tokens = [c for c in tree.children if isinstance(c, Token) and c.type != "COMMENT"]
        name_token = tokens[0]
        name = str(name_token)
        if name in self.enums:
            raise self.at(line, name_token, f"enum {name} is declared twice")
        if name in _PRIMITIVES or name in _GENERICS:
            raise self.at(line, name_token, f"enum name {name} is a built-in type name")
        base: _Kind | None = None
        base_token = tokens[1] if len(tokens) > 1 else None
        if base_token is not None:
            if str(base_token) not in _ENUM_BASES:
                raise self.at(
                    line,
                    base_token,
                    f"enum base type must be text, integer or number (or an alias), not {base_token}",
                )
            base = _ENUM_BASES[str(base_token)]
        variants = [c.children[0] for c in tree.children if isinstance(c, Tree)]
        values: list[str] = []
        kinds: set[_Kind] = set()
        for variant in variants:
            assert isinstance(variant, Token)
            if variant.type == "SIGNED_NUMBER":
                number = float(variant)
                is_integer = re.fullmatch(r"[+-]?[0-9]+", str(variant)) is not None
                kind = K.TYPE_KIND_INTEGER if is_integer else K.TYPE_KIND_NUMBER
                if base == K.TYPE_KIND_TEXT:
                    raise self.at(
                        line, variant, f"enum {name} is text but variant {variant} is a number (quote it)"
                    )
                if base == K.TYPE_KIND_INTEGER and not is_integer:
                    raise self.at(
                        line, variant, f"enum {name} is integer but variant {variant} is not an integer"
                    )
                value_json = json.dumps(int(variant) if is_integer else number)
            else:
                kind = K.TYPE_KIND_TEXT
                if base is not None and base != K.TYPE_KIND_TEXT:
                    raise self.at(
                        line, variant, f"enum {name} is {_kind_name(base)} but variant {variant} is text"
                    )
                value_json = json.dumps(_unquote(variant) if variant.type == "STRING" else str(variant))
            if kinds and (K.TYPE_KIND_TEXT in kinds) != (kind == K.TYPE_KIND_TEXT):
                raise self.at(
                    line,
                    variant,
                    f"enum {name} mixes text and numeric variants; variants must "
                    "all be text or all be numbers",
                )
            kinds.add(kind)
            # By value, so that `1 | 1.0` is a duplicate too.
            if json.loads(value_json) in [json.loads(v) for v in values]:
                raise self.at(line, variant, f"enum {name} lists {variant} twice")
            values.append(value_json)
        if base is None:
            base = (
                K.TYPE_KIND_TEXT
                if K.TYPE_KIND_TEXT in kinds
                else K.TYPE_KIND_NUMBER
                if K.TYPE_KIND_NUMBER in kinds
                else K.TYPE_KIND_INTEGER
            )
        self.enums[name] = pb.EnumDef(name=name, base=base, values_json=values)

    def _block_header(self, line: _Line, blocks: Sequence[_Block]) -> _Block:
        tree = self.grammar(line, "block_line", "the block header")
        token = tree.children[0]
        assert isinstance(token, Token)
        keyword = " ".join(str(token).split())
        rank = _BLOCK_ORDER[keyword]
        for earlier in blocks:
            if _BLOCK_ORDER[earlier.keyword] == rank:
                raise self.at(
                    line, token, f"block `{keyword}` appears twice (first at line {earlier.line.number})"
                )
            if _BLOCK_ORDER[earlier.keyword] > rank:
                raise self.at(
                    line,
                    token,
                    f"block `{keyword}` must come before `{earlier.keyword}` (line "
                    f"{earlier.line.number}): blocks go in the order {_BLOCK_SEQUENCE}",
                )
        return _Block(keyword, line)

    # -- block lines ---------------------------------------------------------------------------

    def _block_line(self, block: _Block, line: _Line) -> None:
        if block.indent is None:
            block.indent = line.indent
        elif line.indent != block.indent:
            raise self.error(
                line,
                1,
                f"inconsistent indentation in block `{block.keyword}`: its first line is indented by "
                f"{len(block.indent)} character(s), this one by {len(line.indent)} (fields are not nested)",
            )
        if block.keyword in ("import tools", "tools"):
            # Checked for syntax, then dropped: tools are not part of the ScriptContract.
            self.grammar(
                line, "tool_line", 'a tool import (NAME from SOURCE, e.g. `* from native`, `x from mcp("s")`)'
            )
            return
        if block.keyword in ("env", "secrets"):
            block.fields.append((self._env_field(line), line))
        else:
            block.fields.append((self._field(line, block.keyword), line))

    def _field(self, line: _Line, section: str) -> pb.TypedField:
        tree = self.grammar(
            line, "field_line", f"a field of `{section}` (name : type [constraints] [= default])"
        )
        name_token = tree.children[0]
        assert isinstance(name_token, Token)
        result = pb.TypedField(name=str(name_token))
        self._fill(line, result, tree)
        return result

    def _env_field(self, line: _Line) -> pb.TypedField:
        tree = self.grammar(line, "env_line", 'an env line (KEY from "VAR", KEY = "literal" or KEY : type)')
        name_token = tree.children[0]
        assert isinstance(name_token, Token)
        result = pb.TypedField(name=str(name_token))
        has_type = any(isinstance(c, Tree) and c.data == "type" for c in tree.children)
        self._fill(line, result, tree)
        for child in tree.children:
            if isinstance(child, Tree) and child.data == "env_from":
                source = child.children[0]
                assert isinstance(source, Token)
                result.env_from = _unquote(source)
                if not result.env_from:
                    raise self.at(line, source, "env source variable name is empty")
        if not has_type:
            # `KEY = literal`: the literal's type; `KEY from "VAR"` / bare `KEY`: text.
            default = json.loads(result.default_value_json) if result.default_value_json else None
            result.type.kind = _literal_kind(default)
        return result

    def _fill(self, line: _Line, result: pb.TypedField, tree: Tree[Token]) -> None:
        """Type, constraints, default, comment of a field or env line; checks they agree."""
        constraints_seen: dict[str, Token] = {}
        default_tree: Tree[Token] | None = None
        for child in tree.children:
            if isinstance(child, Token) and child.type == "COMMENT":
                result.description = str(child)[2:].strip()
            elif isinstance(child, Tree) and child.data == "type":
                result.type.CopyFrom(self._type(line, child))
            elif isinstance(child, Tree) and child.data == "constraint":
                self._constraint(line, result, child, constraints_seen)
            elif isinstance(child, Tree) and child.data == "default":
                default_tree = child
        if default_tree is None:
            result.required = True
            return
        literal = default_tree.children[0]
        assert isinstance(literal, Tree)
        value = self._literal(literal)
        column = _first_column(literal)
        if value is not None and result.HasField("type"):
            problem = self._default_problem(result.type, value)
            if problem:
                raise self.error(line, column, f"default of {result.name}: {problem}")
        result.default_value_json = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        result.required = False

    def _type(self, line: _Line, tree: Tree[Token]) -> pb.TypeRef:
        name_token = tree.children[0]
        assert isinstance(name_token, Token)
        name = str(name_token)
        arguments = [self._type(line, c) for c in tree.children[1:] if isinstance(c, Tree)]
        argument_trees = [c for c in tree.children[1:] if isinstance(c, Tree)]
        if name in _GENERICS:
            if name == "list":
                if len(arguments) > 1:
                    raise self.at(line, name_token, "list takes one element type: list<T>")
                element = arguments[0] if arguments else pb.TypeRef(kind=K.TYPE_KIND_ANY)
                return pb.TypeRef(kind=K.TYPE_KIND_LIST, element=element)
            if len(arguments) != 2:
                raise self.at(line, name_token, "map takes a key and a value type: map<K, V>")
            key, value = arguments
            key_ok = key.kind == K.TYPE_KIND_TEXT or (
                key.kind == K.TYPE_KIND_ENUM and self.enums[key.enum_name].base == K.TYPE_KIND_TEXT
            )
            if not key_ok:
                key_token = argument_trees[0].children[0]
                assert isinstance(key_token, Token)
                raise self.at(
                    line, key_token, "map keys must be text or a text enum (JSON object keys are strings)"
                )
            return pb.TypeRef(kind=K.TYPE_KIND_MAP, key=key, value=value)
        if arguments:
            raise self.at(line, name_token, f"type {name} takes no <...> arguments")
        if name in _PRIMITIVES:
            return pb.TypeRef(kind=_PRIMITIVES[name])
        if name in self.enums:
            return pb.TypeRef(kind=K.TYPE_KIND_ENUM, enum_name=name)
        enums = f"; declared enums: {', '.join(self.enums)}" if self.enums else ""
        raise self.at(
            line,
            name_token,
            f"unknown type {name} (expected {_TYPE_NAMES}, an alias, or an enum "
            f"declared before the blocks{enums})",
        )

    def _constraint(
        self, line: _Line, result: pb.TypedField, tree: Tree[Token], seen: dict[str, Token]
    ) -> None:
        name_token = tree.children[0]
        assert isinstance(name_token, Token)
        name = str(name_token)
        has_parens = len(tree.children) > 1
        arguments = [c for c in tree.children[1:] if isinstance(c, Token)]
        if name not in _CONSTRAINTS:
            raise self.at(
                line, name_token, f"unknown constraint {name} (expected one of {', '.join(_CONSTRAINTS)})"
            )
        if (
            name in seen
            or (name in ("min", "max") and "range" in seen)
            or (name == "range" and ("min" in seen or "max" in seen))
        ):
            raise self.at(line, name_token, f"constraint {name} repeats a bound already given on this field")
        seen[name] = name_token
        count, kinds, kinds_text = _CONSTRAINTS[name]
        if result.type.kind not in kinds:
            raise self.at(
                line,
                name_token,
                f"constraint {name} applies to {kinds_text} fields, not {_type_text(result.type)}",
            )
        if count == 0 and has_parens:
            raise self.at(line, name_token, f"constraint {name} takes no arguments")
        if len(arguments) != count:
            form = {1: f"{name}(n)", 2: f"{name}(min, max)"}.get(count, name)
            if name == "pattern":
                form = 'pattern("regex")'
            raise self.at(line, name_token, f"constraint {name} takes {count} argument(s): {form}")
        constraints = result.constraints
        if name == "pattern":
            if arguments[0].type != "STRING":
                raise self.at(line, arguments[0], 'pattern takes a quoted regular expression: pattern("...")')
            regex = _unquote(arguments[0])
            try:
                re.compile(regex)
            except re.error as exc:
                raise self.at(
                    line, arguments[0], f"pattern {regex!r} is not a valid regular expression: {exc}"
                ) from None
            constraints.pattern = regex
            return
        if name == "unique":
            constraints.unique = True
            return
        numbers: list[float] = []
        for argument in arguments:
            if argument.type != "SIGNED_NUMBER":
                raise self.at(line, argument, f"constraint {name} takes numbers, not {argument}")
            number = float(argument)
            if not math.isfinite(number):
                raise self.at(line, argument, f"constraint {name}: {argument} is not a finite number")
            if name in ("length", "min_items", "max_items") and (not number.is_integer() or number < 0):
                raise self.at(line, argument, f"constraint {name} takes whole numbers >= 0, not {argument}")
            numbers.append(number)
        if len(numbers) == 2 and numbers[0] > numbers[1]:
            raise self.at(
                line, arguments[1], f"constraint {name}: max {arguments[1]} is below min {arguments[0]}"
            )
        if name == "range":
            constraints.minimum, constraints.maximum = numbers
        elif name == "min":
            constraints.minimum = numbers[0]
        elif name == "max":
            constraints.maximum = numbers[0]
        elif name == "length":
            constraints.min_length, constraints.max_length = (int(n) for n in numbers)
        elif name == "min_items":
            constraints.min_items = int(numbers[0])
        else:
            constraints.max_items = int(numbers[0])
        low = constraints.min_items if constraints.HasField("min_items") else None
        high = constraints.max_items if constraints.HasField("max_items") else None
        if low is not None and high is not None and low > high:
            raise self.at(line, name_token, f"max_items {high} is below min_items {low}")
        if (
            constraints.HasField("minimum")
            and constraints.HasField("maximum")
            and (constraints.minimum > constraints.maximum)
        ):
            raise self.at(
                line, name_token, f"max {constraints.maximum:g} is below min {constraints.minimum:g}"
            )

    def _literal(self, tree: Tree[Token]) -> Any:
        kind = tree.data
        if kind == "string":
            return _unquote(_only_token(tree))
        if kind == "number":
            text = str(_only_token(tree))
            return int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else float(text)
        if kind in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[kind]
        if kind == "array":
            return [self._literal(c) for c in tree.children if isinstance(c, Tree)]
        if kind == "object":
            result: dict[str, Any] = {}
            for pair in tree.children:
                if not isinstance(pair, Tree):
                    continue
                key_token, value = pair.children
                assert isinstance(key_token, Token) and isinstance(value, Tree)
                result[_unquote(key_token) if key_token.type == "STRING" else str(key_token)] = self._literal(
                    value
                )
            return result
        raise AssertionError(f"unknown literal {kind}")  # pragma: no cover

    def _default_problem(self, type_ref: pb.TypeRef, value: Any) -> str:
        """Why `value` does not fit `type_ref` ("" when it fits; null fits everything)."""
        kind = type_ref.kind
        if value is None or kind == K.TYPE_KIND_ANY:
            return ""
        if kind == K.TYPE_KIND_ENUM:
            allowed = [json.loads(v) for v in self.enums[type_ref.enum_name].values_json]
            if value in allowed and not isinstance(value, bool):
                return ""
            return f"{json.dumps(value)} is not one of enum {type_ref.enum_name}'s values"
        if kind == K.TYPE_KIND_LIST:
            if not isinstance(value, list):
                return f"{json.dumps(value)} does not fit type {_type_text(type_ref)}"
            for item in value:
                problem = self._default_problem(type_ref.element, item)
                if problem:
                    return problem
            return ""
        if kind == K.TYPE_KIND_MAP:
            if not isinstance(value, dict):
                return f"{json.dumps(value)} does not fit type {_type_text(type_ref)}"
            for item in value.values():
                problem = self._default_problem(type_ref.value, item)
                if problem:
                    return problem
            return ""
        fits = {
            K.TYPE_KIND_TEXT: isinstance(value, str),
            K.TYPE_KIND_BINARY: isinstance(value, str),
            K.TYPE_KIND_DATE: isinstance(value, str),
            K.TYPE_KIND_TIMESTAMP: isinstance(value, str),
            K.TYPE_KIND_NUMBER: isinstance(value, (int, float)) and not isinstance(value, bool),
            K.TYPE_KIND_INTEGER: isinstance(value, int) and not isinstance(value, bool),
            K.TYPE_KIND_BOOLEAN: isinstance(value, bool),
            K.TYPE_KIND_OBJECT: isinstance(value, dict),
        }.get(kind, True)
        return "" if fits else f"{json.dumps(value)} does not fit type {_type_text(type_ref)}"

    # -- result --------------------------------------------------------------------------------

    def _contract(self, blocks: Sequence[_Block]) -> pb.ScriptContract:
        contract = pb.ScriptContract(
            enums=list(self.enums.values()),
            accepted_content_types=self.content_types,
            accepted_extensions=self.extensions,
        )
        targets = {
            "input": contract.inputs,
            "output": contract.outputs,
            "stream": contract.stream,
            "env": contract.env,
            "secrets": contract.env,
        }
        for block in blocks:
            target = targets.get(block.keyword)
            if target is None:
                continue
            known = {f.name for f in target}
            for declared, field_line in block.fields:
                if declared.name in known:
                    raise self.error(
                        field_line,
                        len(field_line.indent) + 1,
                        f"{declared.name} is declared twice in {_section_name(block.keyword)}",
                    )
                known.add(declared.name)
                target.append(declared)
        return contract


def _only_token(tree: Tree[Token]) -> Token:
    token = tree.children[0]
    assert isinstance(token, Token)
    return token


def _first_column(tree: Tree[Token]) -> int:
    """1-based column where a parsed literal starts (propagate_positions fills `meta`)."""
    column = getattr(tree.meta, "column", None)
    return column if isinstance(column, int) else 1


def _literal_kind(value: Any) -> _Kind:
    if isinstance(value, bool):
        return K.TYPE_KIND_BOOLEAN
    if isinstance(value, int):
        return K.TYPE_KIND_INTEGER
    if isinstance(value, float):
        return K.TYPE_KIND_NUMBER
    if isinstance(value, list):
        return K.TYPE_KIND_LIST
    if isinstance(value, dict):
        return K.TYPE_KIND_OBJECT
    return K.TYPE_KIND_TEXT  # strings, and null / no default (an env value is text)


def _kind_name(kind: _Kind) -> str:
    return pb.TypeKind.Name(kind).removeprefix("TYPE_KIND_").lower()


def _type_text(type_ref: pb.TypeRef) -> str:
    if type_ref.kind == K.TYPE_KIND_ENUM:
        return f"enum {type_ref.enum_name}"
    if type_ref.kind == K.TYPE_KIND_LIST:
        return f"list<{_type_text(type_ref.element)}>"
    if type_ref.kind == K.TYPE_KIND_MAP:
        return f"map<{_type_text(type_ref.key)}, {_type_text(type_ref.value)}>"
    return _kind_name(type_ref.kind)


def _section_name(keyword: str) -> str:
    return "env (env and secrets)" if keyword in ("env", "secrets") else keyword
