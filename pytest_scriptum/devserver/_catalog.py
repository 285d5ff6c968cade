"""The dev server's built-in catalogs: native tools (ListTools) and templates (ListTemplates).

Tools are what a handler can call with `context.tool(name, **inputs)` (the worker implements
them; docs: native tools are built-in functions for file ops, HTTP, `echo`, ...). Templates are
read-only bundles (see `_program`): the contract part is the documented `.scriptum` declaration
syntax, the handler part the dev server's Python stand-in, so `CreateScript(from_template=...)`
gives a draft that compiles and runs here.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

from pytest_scriptum._proto import scriptum_pb2 as pb

__all__ = ["TEMPLATES", "TOOLS", "TOOL_NAMES", "Template", "template_info"]


def _native(name: str, description: str) -> pb.Tool:
    """A native tool of the dev server's worker (all at version 1.0.0)."""
    return pb.Tool(
        tool_id=f"native.{name}", name=name, version="1.0.0", description=description, kind="native"
    )


TOOLS: tuple[pb.Tool, ...] = (
    _native("echo", "Returns its inputs unchanged: context.tool('echo', **inputs) -> inputs."),
    _native("file_read", "Reads a UTF-8 text file: context.tool('file_read', path=...) -> {'content': str}."),
    _native(
        "http_request",
        "An HTTP request: context.tool('http_request', url=..., method='GET', body=None, "
        "headers={}) -> {'status': int, 'body': str}.",
    ),
)
TOOL_NAMES: frozenset[str] = frozenset(tool.name for tool in TOOLS)


@dataclass(frozen=True)
class Template:
    """One catalog entry (positional: id, name, description, tags, dsl_content); `dsl_content` is a
    bundle (contract + handler)."""

    id: str
    name: str
    description: str
    tags: tuple[str, ...]
    dsl_content: str


# The bundles (contract + handler) of the catalog's templates.
_RECEIPT_CLASSIFIER = """### contract.scriptum ###
script "receipt-classifier"
  Classifies one receipt.
version "1.0.0"
enum Category = "food" | "travel" | "office" | "other"
input
  merchant : text length(1, 200)
  amount : number min(0)
  currency : text = "EUR"
output
  category : Category
  amount_cents : integer
  currency : text
### handler.py ###
_WORDS = {"food": ("cafe", "bakery", "restaurant"), "travel": ("rail", "air", "taxi")}


def handler(event, context):
    with context.step("classify"):
        merchant = event["merchant"].lower()
        category = next((c for c, words in _WORDS.items() if any(w in merchant for w in words)), "other")
    with context.step("normalise"):
        cents = round(event["amount"] * 100)
    return {"category": category, "amount_cents": cents, "currency": event.get("currency", "EUR")}
"""

_HUMAN_APPROVAL = """### contract.scriptum ###
script "human-approval"
  Asks a reviewer to approve or reject a request.
input
  request : text
output
  decision : text
  request : text
### handler.py ###
def handler(event, context):
    with context.step("prepare"):
        context.log(f"review requested for {event['request']!r}")
    decision = context.ask(
        "Approve", prompt=f"Approve {event['request']}?", type="text", options=["approve", "reject"]
    )
    return {"decision": decision, "request": event["request"]}
"""

_HTTP_FETCH = """### contract.scriptum ###
script "http-fetch"
  Fetches one URL.
input
  url : text pattern("^https?://")
output
  status : integer
  length : integer
env
  USER_AGENT = "scriptum-devserver"
### handler.py ###
def handler(event, context):
    headers = {"user-agent": context.env.get("USER_AGENT", "scriptum-devserver")}
    response = context.tool("http_request", url=event["url"], headers=headers)
    return {"status": response["status"], "length": len(response["body"])}
"""

TEMPLATES: tuple[Template, ...] = (
    Template(
        "receipt-classifier", "Receipt classifier",
        "Classifies one receipt into a category and normalises its amount.",
        ("finance", "starter"), _RECEIPT_CLASSIFIER,
    ),
    Template(
        "human-approval", "Human approval", "Pauses for a human decision (ask), then reports it.",
        ("human-in-the-loop",), _HUMAN_APPROVAL,
    ),
    Template(
        "http-fetch", "HTTP fetch", "Fetches a URL with the native http_request tool and reports its status.",
        ("tools",), _HTTP_FETCH,
    ),
)


@functools.cache
def template_info(template_id: str) -> pb.TemplateInfo | None:
    """The TemplateInfo of a catalog entry (contract parsed once), or None for an unknown id."""
    from ._program import compile_bundle  # deferred: _program imports this module's TOOL_NAMES

    for template in TEMPLATES:
        if template.id == template_id:
            compiled = compile_bundle(template.dsl_content)
            contract = compiled.program.contract if compiled.program is not None else pb.ScriptContract()
            return pb.TemplateInfo(**asdict(template), contract=contract)
    return None
