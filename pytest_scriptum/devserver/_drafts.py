"""Draft states: saved (DRAFT), compiled (COMPILED) or failed to compile (FAILED).

A draft is stored as its DraftInfo message; its `dsl_content` is a bundle (see `_program`).
"""

from __future__ import annotations

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._errors import precondition
from ._program import Compiled, Program, compile_bundle, sha256_hex

__all__ = ["compiled_draft", "program_of_bundle", "saved_draft"]


def saved_draft(name: str, dsl_content: str, now_ms: int) -> pb.DraftInfo:
    """The draft right after SaveScriptDraft: status DRAFT, not compiled."""
    return pb.DraftInfo(
        name=name,
        status=pb.VERSION_STATUS_DRAFT,
        dsl_content=dsl_content,
        updated_at_ms=now_ms,
        exists=True,
        content_sha256=sha256_hex(dsl_content),
    )


def apply_compile(draft: pb.DraftInfo, compiled: Compiled) -> pb.DraftInfo:
    """The draft after compiling: COMPILED (with IR, contract, tools) or FAILED (diagnostics)."""
    result = pb.DraftInfo()
    result.CopyFrom(draft)
    result.ClearField("diagnostics")
    result.diagnostics.extend(compiled.diagnostics)
    del result.tools_required[:]
    result.tools_required.extend(compiled.tools_required)
    if compiled.program is not None:
        result.status = pb.VERSION_STATUS_COMPILED
        result.ir_yaml = compiled.ir_yaml
        result.contract.CopyFrom(compiled.program.contract)
    else:
        result.status = pb.VERSION_STATUS_FAILED
        result.ir_yaml = ""
        result.ClearField("contract")
    return result


def compiled_draft(name: str, dsl_content: str, now_ms: int) -> pb.DraftInfo:
    """A draft saved and compiled at once (the seed's draft/)."""
    return apply_compile(saved_draft(name, dsl_content, now_ms), compile_bundle(dsl_content))


def program_of_bundle(dsl_content: str) -> Program:
    """The runnable program of a bundle; FAILED_PRECONDITION naming the first error when it does
    not compile."""
    compiled = compile_bundle(dsl_content)
    if compiled.program is None:
        first = compiled.diagnostics[0]
        raise precondition(
            f"the draft does not compile: {first.file}:{first.line}:{first.column}: {first.message}"
        )
    return compiled.program
