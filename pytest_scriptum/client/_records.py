"""The client's typed records: what every ScriptumClient method returns, whatever the transport.

Records are built from a message rendered as a dict with proto field names (``json_format``'s
``preserving_proto_field_name=True``), so they never depend on field numbers: the gRPC client
renders messages of the server's reflected descriptors, the HTTP client parses pbjson. Enum values
are the documented ones without the proto prefix (``COMPLETED``, not ``THREAD_STATUS_COMPLETED``);
int64 fields (JSON strings on the wire) are ints here. Source of every field: the proto's comments
and docs.dodil.io/scriptum (see ``../shared/scriptum-api-facts.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "TERMINAL_STATUSES",
    "THREAD_STATUSES",
    "Activation",
    "ApiInfo",
    "Diagnostic",
    "DraftInfo",
    "EnvVar",
    "Health",
    "PendingAsk",
    "PublishResult",
    "RollbackResult",
    "RunRecord",
    "Script",
    "ScriptEnv",
    "ScriptVersion",
    "Step",
    "Template",
    "Thread",
    "ThreadOutput",
    "Tool",
    "enum_value",
]

# docs: /scriptum/concepts. CLI: terminal = completed, failed, cancelled; PAUSED waits for a resume.
THREAD_STATUSES: tuple[str, ...] = ("PENDING", "RUNNING", "COMPLETED", "PAUSED", "FAILED", "CANCELLED")
TERMINAL_STATUSES: frozenset[str] = frozenset({"COMPLETED", "FAILED", "CANCELLED"})

_EMPTY: Mapping[str, str] = MappingProxyType({})


def enum_value(name: str | int | None, prefix: str) -> str:
    """The documented value of an enum name: ``THREAD_STATUS_COMPLETED`` -> ``COMPLETED``.

    A server whose enum is unprefixed (``COMPLETED``) gives the same value. Unset is "".
    """
    if name is None or isinstance(name, int):
        return "" if not name else str(name)
    text = name[len(prefix):] if name.startswith(prefix) else name
    return "" if text == "UNSPECIFIED" else text


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


@dataclass(frozen=True)
class ApiInfo:
    """How the client speaks to this server.

    ``descriptors`` is ``"reflection"`` (read from the server) or ``"bundled"`` (our proto);
    ``extensions`` names the EXTENSION fields the server's descriptors show, as
    ``"Message.field"``; ``problems`` names every method or field the plugin needs that the
    server lacks (DESIGN section 5, contract preflight).
    """

    descriptors: str
    extensions: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()
    # Methods the server lacks that the client works around ("WatchThread: method missing;
    # threads are followed by GetThread polling"): not problems, but never silent.
    fallbacks: tuple[str, ...] = ()
    # Where the descriptors came from, or why reflection was not used. With "bundled" the
    # extensions are those of the bundled proto: assumed, not read from the server.
    detail: str = ""

    def has(self, extension: str) -> bool:
        """Whether the server offers ``extension`` ("RollbackScriptRequest.expected_active_version")."""
        return extension in self.extensions

    def problems_of(self, *methods: str) -> tuple[str, ...]:
        """The problems of the given methods only (each problem starts with ``"Method: "``)."""
        return tuple(p for p in self.problems if p.split(":", 1)[0] in methods)


@dataclass(frozen=True)
class Activation:
    """One entry of a script's activation history (EXTENSION)."""

    sequence: int
    version: int
    from_version: int
    kind: str  # "PUBLISH" or "ROLLBACK"
    reason: str = ""
    incident_id: str = ""
    rollback_id: str = ""
    at_ms: int = 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Activation:
        return cls(
            sequence=_int(d.get("sequence")), version=_int(d.get("version")),
            from_version=_int(d.get("from_version")),
            kind=enum_value(d.get("kind"), "ACTIVATION_KIND_"),
            reason=d.get("reason", ""), incident_id=d.get("incident_id", ""),
            rollback_id=d.get("rollback_id", ""), at_ms=_int(d.get("at_ms")),
        )


@dataclass(frozen=True)
class Script:
    """A script: ``active_version`` / ``latest_version`` are 0 when none; ``draft_status`` is ""
    without a draft; ``history`` is None when the platform offers no activation history."""

    name: str
    active_version: int
    latest_version: int
    status: str = ""
    draft_status: str = ""
    contract: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[Activation, ...] | None = None

    @property
    def rolled_back_from(self) -> tuple[int, ...]:
        """Versions a rollback moved away from, ascending (empty without history)."""
        return tuple(sorted({a.from_version for a in self.history or () if a.kind == "ROLLBACK"}))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, has_history: bool) -> Script:
        history = tuple(Activation.from_dict(a) for a in d.get("activation_history", ()))
        return cls(
            name=d.get("name", ""), active_version=_int(d.get("active_version")),
            latest_version=_int(d.get("latest_version")),
            status=enum_value(d.get("status"), "SCRIPT_STATUS_"),
            draft_status=enum_value(d.get("draft_status"), "VERSION_STATUS_"),
            contract=dict(d.get("contract", {})),
            history=history if has_history else None,
        )


@dataclass(frozen=True)
class ScriptVersion:
    """One published version; ``status`` is ACTIVE, SUPERSEDED or COMPILED; ``contract`` is the
    ScriptContract as a dict of proto field names."""

    name: str
    version: int
    status: str
    contract: Mapping[str, Any] = field(default_factory=dict)
    content_sha256: str = ""
    created_at_ms: int = 0
    rolled_back_from: bool | None = None  # None: the platform does not say (EXTENSION absent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, has_rolled_back_from: bool = False) -> ScriptVersion:
        return cls(
            name=d.get("name", ""), version=_int(d.get("version")),
            status=enum_value(d.get("status"), "VERSION_STATUS_"),
            contract=dict(d.get("contract", {})), content_sha256=d.get("content_sha256", ""),
            created_at_ms=_int(d.get("created_at_ms")),
            rolled_back_from=bool(d.get("rolled_back_from", False)) if has_rolled_back_from else None,
        )


@dataclass(frozen=True)
class Diagnostic:
    """A compiler diagnostic."""

    file: str
    line: int
    column: int
    severity: str
    message: str
    hint: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Diagnostic:
        return cls(d.get("file", ""), _int(d.get("line")), _int(d.get("column")),
                   enum_value(d.get("severity"), "DIAGNOSTIC_SEVERITY_"), d.get("message", ""),
                   d.get("hint", ""))


@dataclass(frozen=True)
class DraftInfo:
    """The draft: ``status`` DRAFT, COMPILING, COMPILED or FAILED; ``exists`` False without one."""

    name: str
    exists: bool
    status: str
    content_sha256: str = ""
    contract: Mapping[str, Any] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()
    tools_required: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DraftInfo:
        status = enum_value(d.get("status"), "VERSION_STATUS_")
        return cls(
            name=d.get("name", ""), exists=bool(d.get("exists", bool(status))), status=status,
            content_sha256=d.get("content_sha256", ""), contract=dict(d.get("contract", {})),
            diagnostics=tuple(Diagnostic.from_dict(x) for x in d.get("diagnostics", ())),
            tools_required=tuple(d.get("tools_required", ())),
        )


@dataclass(frozen=True)
class PublishResult:
    """What PublishScriptDraft did: ``version``, the version it published and activated, and
    ``previous_active_version``, the one active before (0: none; it is SUPERSEDED now)."""

    version: ScriptVersion
    previous_active_version: int


@dataclass(frozen=True)
class RollbackResult:
    """What RollbackScript did: ``script`` as it is after the rollback (its activation history has
    the new ROLLBACK entry), the version active before and the one active now."""

    script: Script
    previous_active_version: int
    active_version: int


@dataclass(frozen=True, kw_only=True)
class PendingAsk:
    """An ``ask`` a PAUSED thread waits on (EXTENSION); keyword-only, its fields are all strings."""

    step_path: str
    label: str
    prompt: str = ""
    type: str = "text"
    options: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PendingAsk:
        return cls(
            step_path=d.get("step_path", ""), label=d.get("label", ""), prompt=d.get("prompt", ""),
            type=d.get("type", "text") or "text", options=tuple(d.get("options", ())),
        )


@dataclass(frozen=True)
class Thread:
    """A thread as GetThread / WatchThread report it.

    ``status`` is one of THREAD_STATUSES. ``error_code`` (EXTENSION) starting with ``PLATFORM_``
    marks a failure that is the platform's own, never the script's.
    """

    thread_id: str
    status: str
    script_name: str = ""
    version: int = 0
    error: str = ""
    error_code: str = ""
    current_step_path: str = ""
    current_step_name: str = ""
    total_steps: int = 0
    created_at_ms: int = 0
    started_at_ms: int = 0
    finished_at_ms: int = 0
    load_env: bool = False
    draft: bool = False
    env_keys: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    pending_ask: PendingAsk | None = None

    @property
    def terminal(self) -> bool:
        """COMPLETED, FAILED or CANCELLED."""
        return self.status in TERMINAL_STATUSES

    @property
    def settled(self) -> bool:
        """Terminal or PAUSED: nothing more happens without a call (watching can stop)."""
        return self.terminal or self.status == "PAUSED"

    @property
    def platform_fault(self) -> bool:
        """Whether the platform marked the failure as its own (capacity, crash, restart, ...)."""
        return self.error_code.startswith("PLATFORM_")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Thread:
        ask = d.get("pending_ask")
        return cls(
            thread_id=d.get("thread_id", ""), status=enum_value(d.get("status"), "THREAD_STATUS_"),
            script_name=d.get("script_name", ""), version=_int(d.get("version")),
            error=d.get("error", ""), error_code=d.get("error_code", ""),
            current_step_path=d.get("current_step_path", ""),
            current_step_name=d.get("current_step_name", ""), total_steps=_int(d.get("total_steps")),
            created_at_ms=_int(d.get("created_at_ms")), started_at_ms=_int(d.get("started_at_ms")),
            finished_at_ms=_int(d.get("finished_at_ms")), load_env=bool(d.get("load_env", False)),
            draft=bool(d.get("draft", False)), env_keys=tuple(d.get("env_keys", ())),
            metadata=dict(d.get("metadata", {})),
            pending_ask=PendingAsk.from_dict(ask) if ask else None,
        )


@dataclass(frozen=True)
class Step:
    """One step of a thread: ``path`` is hierarchical ("1", "1.0", "1.0.2"); times in ms."""

    path: str
    name: str
    status: str
    started_at_ms: int = 0
    finished_at_ms: int = 0
    duration_ms: int = 0
    error: str = ""
    primitive: str = ""
    tool: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Step:
        return cls(
            path=d.get("path", ""), name=d.get("name", ""),
            status=enum_value(d.get("status"), "STEP_STATUS_"),
            started_at_ms=_int(d.get("started_at_ms")), finished_at_ms=_int(d.get("finished_at_ms")),
            duration_ms=_int(d.get("duration_ms")), error=d.get("error", ""),
            primitive=d.get("primitive", ""), tool=d.get("tool", ""),
        )


@dataclass(frozen=True)
class ThreadOutput:
    """A thread's result: the whole output (streamed when the unary answer was truncated)."""

    thread_id: str
    status: str
    output_data: bytes
    output_total_bytes: int
    steps: tuple[Step, ...] = ()
    yielded_values: tuple[str, ...] = ()
    streamed: bool = False


@dataclass(frozen=True)
class RunRecord:
    """A whole run: the settled thread and, unless it was cancelled before any result, its output."""

    thread: Thread
    output: ThreadOutput | None


@dataclass(frozen=True)
class EnvVar:
    """A tenant env var. The value is sensitive: it is kept out of the repr."""

    key: str
    value: str = field(repr=False)
    updated_at_ms: int = 0


@dataclass(frozen=True)
class ScriptEnv:
    """A script's env overlay (KEY -> VALUE; an empty value defers to the tenant env).
    Values are kept out of the repr."""

    name: str
    env: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False)


@dataclass(frozen=True)
class Health:
    """HealthCheck's answer: ``status`` ("SERVING" when healthy), the server's ``version`` string
    and ``uptime_seconds`` since it started."""

    status: str
    version: str
    uptime_seconds: int = 0  # 0 when the server does not say


@dataclass(frozen=True)
class Tool:
    """A catalog tool."""

    tool_id: str
    """The catalog id, e.g. ``native.echo``; the other fields are "" when the catalog omits them
    (``name`` is what ``context.tool(name)`` calls)."""
    name: str = ""
    version: str = ""
    description: str = ""
    kind: str = ""


@dataclass(frozen=True)
class Template:
    """A template: read-only DSL source and its contract."""

    id: str
    name: str
    description: str = ""
    dsl_content: str = ""
    contract: Mapping[str, Any] = field(default_factory=dict)
