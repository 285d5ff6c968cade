"""A script's program on the dev server: a Python handler plus, optionally, its contract.

The platform compiles `.scriptum` programs; the dev server runs a local stand-in, a Python
`handler(event, context)` (DESIGN section 5). A draft's `dsl_content` (SaveScriptDraft) and a
version's source (GetScriptCode) are one text, the *bundle*:

    ### contract.scriptum ###
    script "receipt-classifier"
    input
      merchant : text
    ### handler.py ###
    def handler(event, context):
        return {"merchant": event["merchant"]}

A line `### contract.scriptum ###` or `### handler.py ###` starts that part (the marker is a
comment in Python and a section separator in `.scriptum`). Text without markers is all
`handler.py` (no contract). Compiling (CompileScriptDraft) is Python's `compile()` of the handler,
a check that it defines a top-level `handler`, a check of the tools it calls
(`context.tool("name", ...)` with a literal name) against the catalog, and the contract parse
(`_contract_lang`). Diagnostics name the part (`handler.py` / `contract.scriptum`) with line and
column counted in the whole `dsl_content` as sent.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field

import yaml
from google.protobuf import json_format

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._catalog import TOOL_NAMES
from ._contract_lang import ContractSyntaxError, parse_contract

__all__ = [
    "CONTRACT_FILE",
    "HANDLER_FILE",
    "Compiled",
    "Program",
    "compile_bundle",
    "join_bundle",
    "sha256_hex",
]

HANDLER_FILE = "handler.py"
CONTRACT_FILE = "contract.scriptum"
_MARKER = re.compile(r"^### (contract\.scriptum|handler\.py) ###[ \t]*$")
_ERROR = pb.DIAGNOSTIC_SEVERITY_ERROR


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of the UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Program:
    """What runs: the handler source and the contract text ("" = none) with its parsed contract."""

    handler: str
    contract_text: str = ""
    contract: pb.ScriptContract = field(default_factory=pb.ScriptContract)

    @property
    def bundle(self) -> str:
        """The program as one `dsl_content` text."""
        return join_bundle(self.handler, self.contract_text)


@dataclass(frozen=True)
class Compiled:
    """CompileScriptDraft's outcome: `program` is None when any ERROR diagnostic was found."""

    program: Program | None
    diagnostics: tuple[pb.Diagnostic, ...]
    tools_required: tuple[str, ...]
    ast_json: str
    ir_yaml: str


def join_bundle(handler: str, contract_text: str) -> str:
    """The bundle of a handler and a contract ("" = no contract: the handler alone)."""
    if not contract_text:
        return handler
    contract = contract_text if contract_text.endswith("\n") else contract_text + "\n"
    return f"### {CONTRACT_FILE} ###\n{contract}### {HANDLER_FILE} ###\n{handler}"


def _split(dsl: str) -> tuple[dict[str, tuple[int, str]], list[pb.Diagnostic]]:
    """Parts by file name -> (first line number of the part's text, the text padded with blank
    lines so that line numbers count in the whole bundle)."""
    lines = dsl.splitlines(keepends=True)
    if not any(_MARKER.match(line.rstrip("\r\n")) for line in lines):
        return {HANDLER_FILE: (1, dsl)}, []
    parts: dict[str, tuple[int, list[str]]] = {}
    problems: list[pb.Diagnostic] = []
    current: str | None = None
    for number, line in enumerate(lines, start=1):
        match = _MARKER.match(line.rstrip("\r\n"))
        if match is not None:
            current = match.group(1)
            if current in parts:
                problems.append(_diag(current, number, 1, f"a second '### {current} ###' part", ""))
            parts[current] = (number + 1, [])
            continue
        if current is None:
            if line.strip():
                problems.append(
                    _diag(
                        HANDLER_FILE,
                        number,
                        1,
                        "text before the first '### <file> ###' marker",
                        "start the bundle with '### contract.scriptum ###' or '### handler.py ###'",
                    )
                )
            continue
        parts[current][1].append(line)
    padded = {name: (first, "\n" * (first - 1) + "".join(body)) for name, (first, body) in parts.items()}
    return padded, problems


def _diag(file: str, line: int, column: int, message: str, hint: str) -> pb.Diagnostic:
    return pb.Diagnostic(file=file, line=line, column=column, severity=_ERROR, message=message, hint=hint)


def _defines_handler(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "handler":
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "handler" for target in node.targets
        ):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (alias.asname or alias.name) == "handler" for alias in node.names
        ):
            return True
    return False


def _tool_calls(tree: ast.Module) -> list[tuple[str, int, int]]:
    """(name, line, column) of every `<x>.tool("literal", ...)` call."""
    calls = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "tool"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            calls.append((node.args[0].value, node.lineno, node.col_offset + 1))
    return calls


# CPython 3.11 raises SystemError("AST constructor recursion depth mismatch") now and then when
# several threads build ASTs at once (the gRPC pool compiles a draft on every TestScriptDraft): one
# compile at a time. Seen as INTERNAL answers to concurrent TestScriptDraft calls (issue 15).
_COMPILE_LOCK = threading.Lock()


def compile_bundle(dsl: str) -> Compiled:
    """Compile a bundle: diagnostics, tools required, the program when there is no error."""
    parts, diagnostics = _split(dsl)
    handler_first, handler = parts.get(HANDLER_FILE, (1, ""))
    contract_first, contract_padded = parts.get(CONTRACT_FILE, (0, ""))
    functions: list[str] = []
    tools: list[str] = []
    tree: ast.Module | None = None
    if not handler.strip():
        diagnostics.append(
            _diag(HANDLER_FILE, handler_first, 1, "the handler is empty", "define handler(event, context)")
        )
    else:
        try:
            with _COMPILE_LOCK:
                code = compile(handler, HANDLER_FILE, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
            tree = code if isinstance(code, ast.Module) else None
        except SyntaxError as exc:
            diagnostics.append(
                _diag(
                    HANDLER_FILE, exc.lineno or handler_first, exc.offset or 1, f"syntax error: {exc.msg}", ""
                )
            )
        except ValueError as exc:  # e.g. NUL bytes
            diagnostics.append(_diag(HANDLER_FILE, handler_first, 1, f"cannot be compiled: {exc}", ""))
    if tree is not None:
        functions = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if not _defines_handler(tree):
            diagnostics.append(
                _diag(
                    HANDLER_FILE,
                    handler_first,
                    1,
                    "handler.py defines no top-level handler",
                    "add: def handler(event, context): ...",
                )
            )
        for name, line, column in _tool_calls(tree):
            if name not in TOOL_NAMES:
                diagnostics.append(
                    _diag(
                        HANDLER_FILE,
                        line,
                        column,
                        f"unknown tool {name!r}",
                        f"the catalog has: {', '.join(sorted(TOOL_NAMES))}",
                    )
                )
            elif name not in tools:
                tools.append(name)
    contract = pb.ScriptContract()
    contract_text = ""
    if contract_first:
        contract_text = contract_padded[contract_first - 1 :]
        try:
            contract = parse_contract(contract_padded, CONTRACT_FILE)
        except ContractSyntaxError as exc:
            diagnostics.append(_diag(CONTRACT_FILE, exc.line, exc.column, exc.message, ""))
    tools.sort()
    contract_dict = json_format.MessageToDict(contract, preserving_proto_field_name=True)
    ast_json = json.dumps(
        {"handler": {"file": HANDLER_FILE, "functions": functions}, "contract": contract_dict}
    )
    ok = not any(d.severity == _ERROR for d in diagnostics)
    ir_yaml = ""
    program = None
    if ok:
        handler_text = handler[handler_first - 1 :] if handler_first > 1 else handler
        program = Program(handler=handler_text, contract_text=contract_text, contract=contract)
        ir_yaml = yaml.safe_dump(
            {
                "runtime": "devserver-python-handler",
                "entry": "handler",
                "source_sha256": sha256_hex(handler_text),
                "tools_required": tools,
                "contract": contract_dict,
            },
            sort_keys=False,
        )
    return Compiled(program, tuple(diagnostics), tuple(tools), ast_json, ir_yaml)
