"""What the plugin uses of the Scriptum API: the one table, and the check of a server against it.

DESIGN section 5 ("The contract"): the client addresses every field by *name*, so what matters
about a server is whether each method and field the plugin uses exists there with the expected
type. ``METHODS`` and ``MESSAGES`` below are that list, in one place: the gRPC client checks the
server's reflected descriptors against it (``check_service``), preflight reads the outcome from
``ScriptumClient.api_info()``, and the request builder consults ``EXTENSIONS`` to drop extension
fields the server lacks.

Field specs are short strings: ``"[repeated] TYPE [ext] [opt]"``.

- ``TYPE`` is a scalar (``string``, ``int``, ``bool``, ``bytes``, ``double``), ``map<string,string>``,
  or a message / enum name of the bundled proto (looked up in ``MESSAGES`` / ``ENUMS``).
  ``int`` is any integer width: the client renders messages as JSON by name, so an int32 on one
  side and an int64 on the other read the same.
- ``ext``: an EXTENSION (the public docs lack it; the proto marks it). A server without it is not
  a problem; the client then neither sends nor relies on it, and ``api_info().extensions`` says so.
- ``opt``: read when present (a record falls back to a default), so its absence is not a problem;
  a present field of another type still is.

A field not listed is never relied on: records read such fields when a server sends them
(timestamps, descriptions) and default them otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, ServiceDescriptor

__all__ = [
    "ENUMS",
    "EXTENSIONS",
    "MESSAGES",
    "METHODS",
    "SERVICE",
    "FieldSpec",
    "MethodSpec",
    "ServiceCheck",
    "check_service",
    "parse_spec",
]

SERVICE = "dodil.scriptum.v1.ScriptumService"


@dataclass(frozen=True)
class MethodSpec:
    """A method the plugin calls: bundled request/response message names, whether the response is
    a server stream, and whether the client has a fallback when the server lacks the method."""

    request: str
    response: str
    server_streaming: bool = False
    optional: str = ""  # non-empty: what the client does instead when the method is missing


def _m(request: str, response: str, *, stream: bool = False, optional: str = "") -> MethodSpec:
    return MethodSpec(request, response, stream, optional)


# Every RPC a ScriptumClient method calls (docs.dodil.io/scriptum/api-reference; facts sheet section 2).
METHODS: Mapping[str, MethodSpec] = MappingProxyType({
    "HealthCheck": _m("HealthCheckRequest", "HealthCheckResponse"),
    "CreateScript": _m("CreateScriptRequest", "Script"),
    "DeleteScript": _m("DeleteScriptRequest", "DeleteScriptResponse"),
    "ListScripts": _m("ListScriptsRequest", "ListScriptsResponse"),
    "GetScript": _m("GetScriptRequest", "Script"),
    "ListScriptVersions": _m("ListScriptVersionsRequest", "ListScriptVersionsResponse"),
    "GetScriptVersion": _m("GetScriptVersionRequest", "ScriptVersion"),
    "GetDraftInfo": _m("GetDraftInfoRequest", "DraftInfo"),
    "SaveScriptDraft": _m("SaveScriptDraftRequest", "DraftInfo"),
    "CompileScriptDraft": _m("CompileScriptDraftRequest", "CompileScriptDraftResponse"),
    "TestScriptDraft": _m("TestScriptDraftRequest", "CreateThreadResponse"),
    "PublishScriptDraft": _m("PublishScriptDraftRequest", "PublishScriptDraftResponse"),
    "RollbackScript": _m("RollbackScriptRequest", "RollbackScriptResponse"),
    "CreateThread": _m("CreateThreadRequest", "CreateThreadResponse"),
    "GetThread": _m("GetThreadRequest", "Thread"),
    "ListThreads": _m("ListThreadsRequest", "ListThreadsResponse"),
    "CancelThread": _m("CancelThreadRequest", "Thread",
                       optional="a cancelled run's thread is left to its own deadline on the platform"),
    "ResumeThread": _m("ResumeThreadRequest", "Thread"),
    "WatchThread": _m("WatchThreadRequest", "ThreadEvent", stream=True,
                      optional="threads are followed by GetThread polling"),
    "GetThreadResult": _m("GetThreadResultRequest", "GetThreadResultResponse"),
    "StreamThreadResult": _m("StreamThreadResultRequest", "StreamThreadResultResponse", stream=True),
    "ListEnvVars": _m("ListEnvVarsRequest", "ListEnvVarsResponse"),
    "GetEnvVar": _m("GetEnvVarRequest", "EnvVar"),
    "SetEnvVar": _m("SetEnvVarRequest", "EnvVar"),
    "DeleteEnvVar": _m("DeleteEnvVarRequest", "DeleteEnvVarResponse"),
    "ImportEnvVars": _m("ImportEnvVarsRequest", "ImportEnvVarsResponse"),
    "GetScriptEnv": _m("GetScriptEnvRequest", "ScriptEnv"),
    "UpdateScriptEnv": _m("UpdateScriptEnvRequest", "ScriptEnv"),
    "ListTools": _m("ListToolsRequest", "ListToolsResponse"),
    "ListTemplates": _m("ListTemplatesRequest", "ListTemplatesResponse"),
    "GetTemplate": _m("GetTemplateRequest", "TemplateInfo"),
})

_PAGE = {"page_size": "int", "page_token": "string"}

# Fields the client sends (requests) or the plugin reads (responses), by bundled message name.
MESSAGES: Mapping[str, Mapping[str, str]] = MappingProxyType({
    # -- requests --
    "HealthCheckRequest": {},
    "CreateScriptRequest": {"name": "string", "description": "string", "env": "map<string,string>"},
    "DeleteScriptRequest": {"name": "string"},
    "ListScriptsRequest": _PAGE,
    "GetScriptRequest": {"name": "string"},
    "ListScriptVersionsRequest": {"name": "string", **_PAGE},
    "GetScriptVersionRequest": {"name": "string", "version": "int"},
    "GetDraftInfoRequest": {"name": "string"},
    "SaveScriptDraftRequest": {"name": "string", "dsl_content": "string", "ir_yaml": "string"},
    "CompileScriptDraftRequest": {"name": "string"},
    "TestScriptDraftRequest": {"name": "string", "input_json": "string", "load_env": "bool",
                               "timeout": "string", "metadata": "map<string,string>"},
    "PublishScriptDraftRequest": {"name": "string"},
    "RollbackScriptRequest": {"name": "string", "to_version": "int", "expected_active_version": "int ext",
                              "reason": "string ext", "incident_id": "string ext",
                              "rollback_id": "string ext"},
    "CreateThreadRequest": {"script_name": "string", "version": "int", "input_json": "string",
                            "timeout": "string", "metadata": "map<string,string>", "load_env": "bool"},
    "GetThreadRequest": {"thread_id": "string"},
    "ListThreadsRequest": {**_PAGE, "status_filter": "ThreadStatus", "script_name_filter": "string"},
    "CancelThreadRequest": {"thread_id": "string"},
    "ResumeThreadRequest": {"thread_id": "string", "step_input_override_json": "string"},
    "WatchThreadRequest": {"thread_id": "string"},
    "GetThreadResultRequest": {"thread_id": "string"},
    "StreamThreadResultRequest": {"thread_id": "string", "max_chunk_bytes": "int"},
    "ListEnvVarsRequest": _PAGE,
    "GetEnvVarRequest": {"key": "string"},
    "SetEnvVarRequest": {"key": "string", "value": "string"},
    "DeleteEnvVarRequest": {"key": "string"},
    "ImportEnvVarsRequest": {"vars": "map<string,string>"},
    "GetScriptEnvRequest": {"name": "string"},
    "UpdateScriptEnvRequest": {"name": "string", "set": "map<string,string>", "delete": "repeated string"},
    "ListToolsRequest": _PAGE,
    "ListTemplatesRequest": _PAGE,
    "GetTemplateRequest": {"id": "string"},
    # -- responses --
    "HealthCheckResponse": {"status": "string", "version": "string", "uptime_seconds": "int"},
    "DeleteScriptResponse": {},
    "ListScriptsResponse": {"scripts": "repeated Script", "next_page_token": "string"},
    "Script": {"name": "string", "status": "ScriptStatus", "active_version": "int", "latest_version": "int",
               "draft_status": "VersionStatus", "contract": "ScriptContract",
               "activation_history": "repeated Activation ext"},
    "Activation": {"sequence": "int", "version": "int", "from_version": "int", "kind": "ActivationKind",
                   "reason": "string", "incident_id": "string", "rollback_id": "string ext", "at_ms": "int"},
    "ListScriptVersionsResponse": {"versions": "repeated ScriptVersion", "next_page_token": "string"},
    "ScriptVersion": {"name": "string", "version": "int", "status": "VersionStatus",
                      "contract": "ScriptContract", "content_sha256": "string opt",
                      "created_at_ms": "int opt", "rolled_back_from": "bool ext"},
    "DraftInfo": {"name": "string", "status": "VersionStatus", "diagnostics": "repeated Diagnostic",
                  "contract": "ScriptContract", "tools_required": "repeated string",
                  "exists": "bool opt", "content_sha256": "string opt"},
    "Diagnostic": {"file": "string", "line": "int", "column": "int", "severity": "DiagnosticSeverity",
                   "message": "string", "hint": "string"},
    "CompileScriptDraftResponse": {"success": "bool", "diagnostics": "repeated Diagnostic",
                                   "tools_required": "repeated string", "contract": "ScriptContract"},
    "PublishScriptDraftResponse": {"version": "ScriptVersion", "previous_active_version": "int"},
    "RollbackScriptResponse": {"script": "Script", "previous_active_version": "int",
                               "active_version": "int"},
    "CreateThreadResponse": {"thread_id": "string", "status": "ThreadStatus opt", "version": "int opt"},
    "Thread": {"thread_id": "string", "status": "ThreadStatus", "error": "string",
               "current_step_path": "string", "current_step_name": "string", "total_steps": "int",
               "created_at_ms": "int", "started_at_ms": "int", "finished_at_ms": "int",
               "script_name": "string", "version": "int", "metadata": "map<string,string> opt",
               "load_env": "bool opt", "error_code": "string ext", "env_keys": "repeated string ext",
               "pending_ask": "PendingAsk ext", "draft": "bool ext"},
    "PendingAsk": {"step_path": "string", "label": "string", "prompt": "string", "type": "string",
                   "options": "repeated string"},
    "ListThreadsResponse": {"threads": "repeated Thread", "next_page_token": "string"},
    "ThreadEvent": {"thread": "Thread"},
    "GetThreadResultResponse": {"output_data": "bytes", "output_total_bytes": "int",
                                "output_truncated": "bool", "steps": "repeated StepSummary",
                                "yielded_values": "repeated string", "thread_id": "string opt",
                                "status": "ThreadStatus opt"},
    "StepSummary": {"path": "string", "name": "string", "status": "StepStatus", "started_at_ms": "int",
                    "finished_at_ms": "int", "duration_ms": "int", "error": "string",
                    "primitive": "string opt", "tool": "string opt"},
    "StreamThreadResultResponse": {"meta": "ThreadOutputMeta", "chunk": "OutputChunk"},
    "ThreadOutputMeta": {"thread_id": "string", "output_total_bytes": "int", "chunk_count": "int opt",
                         "output_sha256": "string opt"},
    "OutputChunk": {"chunk_index": "int", "data": "bytes", "is_final": "bool"},
    "ListEnvVarsResponse": {"vars": "repeated EnvVar", "next_page_token": "string"},
    "EnvVar": {"key": "string", "value": "string", "updated_at_ms": "int opt"},
    "DeleteEnvVarResponse": {"deleted": "bool"},
    "ImportEnvVarsResponse": {"keys": "repeated string"},
    "ScriptEnv": {"name": "string", "env": "map<string,string>"},
    "ListToolsResponse": {"tools": "repeated Tool", "next_page_token": "string"},
    "Tool": {"tool_id": "string", "name": "string", "version": "string", "description": "string",
             "kind": "string opt"},
    "ListTemplatesResponse": {"templates": "repeated TemplateInfo", "next_page_token": "string"},
    "TemplateInfo": {"id": "string", "name": "string", "description": "string", "dsl_content": "string",
                     "contract": "ScriptContract"},
    # -- the contract: smoke_expect(schema="declared") and preflight's required env keys read it --
    "ScriptContract": {"inputs": "repeated TypedField", "outputs": "repeated TypedField",
                       "env": "repeated TypedField", "enums": "repeated EnumDef"},
    "TypedField": {"name": "string", "type": "TypeRef", "default_value_json": "string", "required": "bool",
                   "constraints": "TypeConstraints opt"},
    "TypeRef": {"kind": "TypeKind", "enum_name": "string", "element": "TypeRef", "key": "TypeRef",
                "value": "TypeRef"},
    "TypeConstraints": {"minimum": "double", "maximum": "double", "min_length": "int", "max_length": "int",
                        "pattern": "string", "min_items": "int", "max_items": "int", "unique": "bool"},
    "EnumDef": {"name": "string", "base": "TypeKind", "values_json": "repeated string"},
})

# Enums and the documented values the plugin relies on (after the enum's prefix, if any).
# An empty tuple: the plugin reads the value as text and relies on none in particular.
ENUMS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "ThreadStatus": ("PENDING", "RUNNING", "COMPLETED", "PAUSED", "FAILED", "CANCELLED"),
    "VersionStatus": ("DRAFT", "COMPILED", "ACTIVE", "SUPERSEDED", "FAILED"),
    "ActivationKind": ("PUBLISH", "ROLLBACK"),
    "ScriptStatus": (),
    "StepStatus": (),
    "DiagnosticSeverity": (),
    "TypeKind": ("TEXT", "NUMBER", "INTEGER", "BOOLEAN", "OBJECT", "LIST", "MAP", "ENUM", "ANY"),
})

_SCALARS: Mapping[str, frozenset[int]] = MappingProxyType({
    "string": frozenset({FieldDescriptor.TYPE_STRING}),
    "bytes": frozenset({FieldDescriptor.TYPE_BYTES}),
    "bool": frozenset({FieldDescriptor.TYPE_BOOL}),
    "double": frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}),
    "int": frozenset({
        FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }),
})
_TYPE_NAMES: Mapping[int, str] = MappingProxyType({
    number: name for name, numbers in _SCALARS.items() for number in numbers
} | {FieldDescriptor.TYPE_ENUM: "enum", FieldDescriptor.TYPE_MESSAGE: "message",
     FieldDescriptor.TYPE_GROUP: "group"})
_MAP = "map<string,string>"


@dataclass(frozen=True)
class FieldSpec:
    """One parsed field spec (see the module docstring)."""

    type: str
    repeated: bool = False
    extension: bool = False
    optional: bool = False


def parse_spec(spec: str) -> FieldSpec:
    """``"repeated Activation ext"`` -> FieldSpec("Activation", repeated=True, extension=True)."""
    words = spec.split()
    repeated = words[0] == "repeated"
    if repeated:
        words = words[1:]
    kind, flags = words[0], set(words[1:])
    unknown = flags - {"ext", "opt"}
    known_type = kind in _SCALARS or kind == _MAP or kind in MESSAGES or kind in ENUMS
    if unknown or not known_type:
        raise ValueError(f"bad field spec {spec!r}")
    return FieldSpec(kind, repeated, "ext" in flags, "opt" in flags)


def _extensions() -> frozenset[str]:
    return frozenset(f"{message}.{name}" for message, fields in MESSAGES.items()
                     for name, spec in fields.items() if parse_spec(spec).extension)


# "Message.field" of every EXTENSION the plugin uses (DESIGN section 5; the proto marks each).
EXTENSIONS: frozenset[str] = _extensions()


@dataclass(frozen=True)
class ServiceCheck:
    """The outcome of ``check_service``: extensions present, problems, and fallbacks in use."""

    extensions: frozenset[str]
    problems: tuple[str, ...]
    fallbacks: tuple[str, ...]


class _Checker:
    def __init__(self) -> None:
        self.extensions: set[str] = set()
        self.problems: list[str] = []
        self.seen: set[tuple[str, str, str]] = set()

    def message(self, method: str, side: str, ours: str, theirs: Descriptor) -> None:
        # One visit per (method, side, message): TypeRef refers to itself.
        key = (method, side, ours)
        if key in self.seen:
            return
        self.seen.add(key)
        for name, raw in MESSAGES[ours].items():
            spec = parse_spec(raw)
            field = theirs.fields_by_name.get(name)
            where = f"{method}: {side} field {theirs.name}.{name}"
            if field is None:
                if not (spec.extension or spec.optional):
                    self.problems.append(f"{where} missing")
                continue
            mismatch = _mismatch(spec, field)
            if mismatch:
                self.problems.append(f"{where} is {_describe(field)}, expected {mismatch}")
                continue
            if spec.extension:
                self.extensions.add(f"{ours}.{name}")
            if spec.type in MESSAGES and field.message_type is not None:
                self.message(method, side, spec.type, field.message_type)
            elif spec.type in ENUMS and field.enum_type is not None:
                self.enum(where, spec.type, field.enum_type)

    def enum(self, where: str, ours: str, theirs: EnumDescriptor) -> None:
        values = {_documented(value.name, theirs.name) for value in theirs.values}
        lacking = [value for value in ENUMS[ours] if value not in values]
        if lacking:
            self.problems.append(f"{where}: enum {theirs.name} lacks {', '.join(lacking)}")


def _documented(value_name: str, enum_name: str) -> str:
    """THREAD_STATUS_COMPLETED (of enum ThreadStatus) -> COMPLETED; an unprefixed name stays."""
    prefix = "".join(f"_{c}" if c.isupper() else c.upper() for c in enum_name).lstrip("_") + "_"
    return value_name[len(prefix):] if value_name.startswith(prefix) else value_name


def _map_entry(field: FieldDescriptor) -> Descriptor | None:
    """The entry message of a map field; None for any other field."""
    message = field.message_type
    return message if message is not None and message.GetOptions().map_entry else None


def _describe(field: FieldDescriptor) -> str:
    entry = _map_entry(field)
    if entry is not None:
        key, value = (entry.fields_by_name[n] for n in ("key", "value"))
        return f"map<{_describe(key)},{_describe(value)}>"
    base = _TYPE_NAMES.get(field.type, f"type {field.type}")
    if field.message_type is not None:
        base = field.message_type.name
    elif field.enum_type is not None:
        base = f"enum {field.enum_type.name}"
    return f"repeated {base}" if field.is_repeated else base


def _mismatch(spec: FieldSpec, field: FieldDescriptor) -> str:
    """"" when ``field`` matches ``spec``; else what was expected, for the problem text."""
    expected = ("repeated " if spec.repeated else "") + spec.type
    entry = _map_entry(field)
    if spec.type == _MAP:
        ok = entry is not None and all(
            entry.fields_by_name[n].type == FieldDescriptor.TYPE_STRING for n in ("key", "value"))
        return "" if ok else expected
    if entry is not None or field.is_repeated != spec.repeated:
        return expected
    if spec.type in MESSAGES:
        ok = field.type == FieldDescriptor.TYPE_MESSAGE
    elif spec.type in ENUMS:
        ok = field.type == FieldDescriptor.TYPE_ENUM
        expected = ("repeated " if spec.repeated else "") + f"enum {spec.type}"
    else:
        ok = field.type in _SCALARS[spec.type]
    return "" if ok else expected


def check_service(service: ServiceDescriptor) -> ServiceCheck:
    """Check a server's ScriptumService descriptor against METHODS / MESSAGES.

    Problems are named ``"GetScript: response field Script.active_version missing"``,
    ``"CreateThread: method missing"``, ``"... is string, expected int"``. A missing method with
    a client-side fallback (WatchThread, CancelThread) is a fallback, not a problem.
    """
    checker = _Checker()
    fallbacks: list[str] = []
    for name, spec in METHODS.items():
        method = service.methods_by_name.get(name)
        if method is None:
            if spec.optional:
                fallbacks.append(f"{name}: method missing; {spec.optional}")
            else:
                checker.problems.append(f"{name}: method missing")
            continue
        streaming = bool(getattr(method, "server_streaming", spec.server_streaming))
        if streaming != spec.server_streaming or getattr(method, "client_streaming", False):
            shape = "a server stream" if spec.server_streaming else "a unary call"
            checker.problems.append(f"{name}: method is not {shape}")
            continue
        checker.message(name, "request", spec.request, method.input_type)
        checker.message(name, "response", spec.response, method.output_type)
    return ServiceCheck(frozenset(checker.extensions), tuple(checker.problems), tuple(fallbacks))
