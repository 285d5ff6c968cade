"""The Scriptum API's logic, shared by the gRPC service and the HTTP gateway.

One method per RPC, named exactly like it (``CreateThread``), taking the caller's organization
(already authenticated), the request message and the call (`Call`: whether the caller went
away) and returning the response message — or, for a server-streaming RPC, an iterator of them.
Errors are ApiError. Nothing here knows about transports.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.contract_schema import contract_json_schema

from ._catalog import TEMPLATES, TOOLS, template_info
from ._drafts import apply_compile, program_of_bundle, saved_draft
from ._errors import ApiError, invalid, not_found, precondition, unimplemented
from ._faults import RETRY_AFTER_S, FaultInjector, StatsBook
from ._program import Program, compile_bundle
from ._seed import SeedError, parse_dotenv
from ._store import NewThread, Store, now_ms
from ._threads import ThreadEngine, ThreadStart, fill_defaults
from ._validation import check_env_key, check_input_json, check_script_name, parse_timeout

if TYPE_CHECKING:
    import jsonschema

__all__ = [
    "OUTPUT_UNARY_CAP",
    "REQUEST_ID_KEY",
    "SERVER_VERSION",
    "STREAMING_METHODS",
    "Call",
    "ScriptumApi",
    "skew_versions",
]

REQUEST_ID_KEY = "scriptum.request_id"
OUTPUT_UNARY_CAP = 4 * 1024 * 1024
DEFAULT_CHUNK = 2 * 1024 * 1024
MIN_CHUNK = 64 * 1024
MAX_CHUNK = 16 * 1024 * 1024
MAX_INLINE_YIELDS = 100
MAX_INLINE_YIELD_BYTES = 1024 * 1024
MAX_DSL_BYTES = 1024 * 1024
DEFAULT_THREAD_PAGE = 50
STREAMING_METHODS = frozenset({"WatchThread", "WatchStep", "StreamThreadResult", "StreamStepResult"})


def _server_version() -> str:
    try:
        return f"pytest-scriptum-devserver {importlib.metadata.version('pytest-scriptum')}"
    except importlib.metadata.PackageNotFoundError:
        return "pytest-scriptum-devserver (unreleased)"


SERVER_VERSION = _server_version()


@dataclass
class Call:
    """One call as the API sees it: `gone` is set when the caller went away.

    A transport may watch the caller lazily: `watch()` arms it (gRPC registers its callback only
    for calls that wait, which keeps it off the hot path of ordinary unary calls)."""

    gone: threading.Event = field(default_factory=threading.Event)
    arm: Callable[[], None] | None = None

    def watch(self) -> threading.Event:
        """`gone`, armed."""
        if self.arm is not None:
            arm, self.arm = self.arm, None
            arm()
        return self.gone


def _status_name(status: int) -> str:
    return pb.ThreadStatus.Name(status).removeprefix("THREAD_STATUS_")  # type: ignore[arg-type]


def _chunk_size(requested: int) -> int:
    """max_chunk_bytes: 0 = 2 MiB; clamped to 64 KiB..16 MiB."""
    if requested <= 0:
        return DEFAULT_CHUNK
    return max(MIN_CHUNK, min(MAX_CHUNK, requested))


def _chunks(data: bytes, size: int) -> Iterator[pb.OutputChunk]:
    """At least one chunk (an empty output is one empty final chunk)."""
    count = max(1, math.ceil(len(data) / size))
    for index in range(count):
        yield pb.OutputChunk(
            chunk_index=index, data=data[index * size : (index + 1) * size], is_final=index == count - 1
        )


class _InputChecker:
    """JSON Schema validators of input contracts, cached by the contract (versions are immutable).

    jsonschema (with its format checkers, a fifth of the server's import time) is imported by the
    first check, or earlier by ``warm_up`` once the server is serving, so it is not paid before
    the server's ready line.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[bytes, jsonschema.protocols.Validator] = {}

    @staticmethod
    def warm_up() -> None:
        """Import jsonschema in a daemon thread (the import lock makes a concurrent check wait)."""
        threading.Thread(target=_import_jsonschema, name="scriptum-warm-up", daemon=True).start()

    def check(self, contract: pb.ScriptContract, event: Any, what: str) -> None:
        if not contract.inputs:
            return  # nothing declared: the dev server does not judge the input
        jsonschema = _import_jsonschema()
        key = contract.SerializeToString(deterministic=True)
        with self._lock:
            validator = self._cache.get(key)
        if validator is None:
            schema = contract_json_schema(
                json_format.MessageToDict(contract, preserving_proto_field_name=True), "inputs"
            )
            cls = jsonschema.validators.validator_for(schema)
            validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
            with self._lock:
                if len(self._cache) > 256:
                    self._cache.clear()
                self._cache[key] = validator
        error = jsonschema.exceptions.best_match(validator.iter_errors(event))
        if error is None:
            return
        where = ".".join(str(part) for part in error.absolute_path)
        field_text = f"field {where!r}: " if where else ""
        raise invalid(f"input_json does not match the input contract of {what}: {field_text}{error.message}")


def _import_jsonschema() -> Any:
    import jsonschema

    return jsonschema


def _ask_value(ask: pb.PendingAsk, override_json: str) -> Any:
    """The decoded answer after checking it against the ask's type and options (INVALID_ARGUMENT).

    The answer is the JSON of `step_input_override_json`; its value is the answer's "value" when
    the answer is an object with that key (the recipes' {"value": "approve", "comment": ...}),
    else the whole answer ("approve", true, 3)."""
    if not override_json.strip():
        raise invalid(f"step_input_override_json is required: the answer to ask {ask.label!r}")
    answer = check_input_json(override_json, "step_input_override_json")
    value = answer["value"] if isinstance(answer, dict) and "value" in answer else answer
    kind = ask.type or "text"
    ok = {
        "text": isinstance(value, str),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }.get(kind, True)
    if not ok:
        raise invalid(
            f"step_input_override_json: ask {ask.label!r} expects a {kind} value, "
            f"got {json.dumps(value)[:100]}"
        )
    if ask.options:
        text = value if isinstance(value, str) else json.dumps(value)
        if text not in ask.options:
            raise invalid(
                f"step_input_override_json: {json.dumps(value)[:100]} is not one of the options of ask "
                f"{ask.label!r}: {', '.join(ask.options)}"
            )
    return answer


def _thread_token(thread: pb.Thread) -> str:
    return base64.urlsafe_b64encode(f"t:{thread.created_at_ms}:{thread.thread_id}".encode()).decode()


def _thread_after(token: str) -> tuple[int, str] | None:
    if not token:
        return None
    try:
        _, created, thread_id = base64.urlsafe_b64decode(token.encode()).decode().split(":", 2)
        return int(created), thread_id
    except (ValueError, UnicodeDecodeError):
        raise invalid(f"page_token {token!r} is not a token this server issued") from None


class ScriptumApi:
    """ScriptumService and ScriptumDevAdmin as plain Python methods."""

    def __init__(self, store: Store, engine: ThreadEngine, stats: StatsBook, faults: FaultInjector) -> None:
        self.store = store
        self.engine = engine
        self.stats = stats
        self.faults = faults
        self.started = time.monotonic()
        self._inputs = _InputChecker()

    def warm_up(self) -> None:
        """Once serving: load in the background what the first calls would otherwise wait for."""
        self._inputs.warm_up()

    @property
    def stopping(self) -> threading.Event:
        return self.engine.stopping

    # ---- health, tools, templates --------------------------------------------------------------

    def HealthCheck(self, org: str, request: pb.HealthCheckRequest, call: Call) -> pb.HealthCheckResponse:
        return pb.HealthCheckResponse(
            status="NOT_SERVING" if self.stopping.is_set() else "SERVING",
            version=SERVER_VERSION,
            uptime_seconds=int(time.monotonic() - self.started),
        )

    def ListTools(self, org: str, request: pb.ListToolsRequest, call: Call) -> pb.ListToolsResponse:
        start, stop, token = _list_page(len(TOOLS), request.page_size, request.page_token)
        return pb.ListToolsResponse(tools=TOOLS[start:stop], next_page_token=token)

    def ListTemplates(
        self, org: str, request: pb.ListTemplatesRequest, call: Call
    ) -> pb.ListTemplatesResponse:
        start, stop, token = _list_page(len(TEMPLATES), request.page_size, request.page_token)
        infos = [template_info(t.id) for t in TEMPLATES[start:stop]]
        return pb.ListTemplatesResponse(templates=[i for i in infos if i is not None], next_page_token=token)

    def GetTemplate(self, org: str, request: pb.GetTemplateRequest, call: Call) -> pb.TemplateInfo:
        info = template_info(request.id)
        if info is None:
            raise not_found(f"template {request.id!r} not found (ListTemplates shows the catalog)")
        copy = pb.TemplateInfo()
        copy.CopyFrom(info)
        return copy

    # ---- scripts ------------------------------------------------------------------------------

    def CreateScript(self, org: str, request: pb.CreateScriptRequest, call: Call) -> pb.Script:
        check_script_name(request.name)
        for key, value in request.env.items():
            _check_env_entry(key, value, f"env[{key!r}]")
        draft = None
        if request.from_template:
            info = template_info(request.from_template)
            if info is None:
                raise not_found(f"from_template: template {request.from_template!r} not found")
            draft = saved_draft(request.name, info.dsl_content, now_ms())
        return self.store.create_script(
            org,
            request.name,
            request.description,
            list(request.tags),
            list(request.labels),
            dict(request.env),
            draft,
        )

    def ListScripts(self, org: str, request: pb.ListScriptsRequest, call: Call) -> pb.ListScriptsResponse:
        return self.store.list_scripts(
            org, list(request.tags), list(request.labels), request.page_size, request.page_token
        )

    def GetScript(self, org: str, request: pb.GetScriptRequest, call: Call) -> pb.Script:
        check_script_name(request.name)
        return self.store.get_script(org, request.name)

    def DeleteScript(self, org: str, request: pb.DeleteScriptRequest, call: Call) -> pb.DeleteScriptResponse:
        check_script_name(request.name)
        self.store.delete_script(org, request.name)
        return pb.DeleteScriptResponse(name=request.name)

    # ---- drafts -------------------------------------------------------------------------------

    def SaveScriptDraft(self, org: str, request: pb.SaveScriptDraftRequest, call: Call) -> pb.DraftInfo:
        check_script_name(request.name)
        if request.ir_yaml and not request.dsl_content:
            raise invalid(
                "ir_yaml: the embedded server runs a Python stand-in and cannot take YAML IR; send the "
                "bundle (### contract.scriptum ### / ### handler.py ###) as dsl_content"
            )
        if not request.dsl_content.strip():
            raise invalid("dsl_content is required: the handler (and optional contract) bundle")
        if len(request.dsl_content.encode("utf-8")) > MAX_DSL_BYTES:
            raise invalid(f"dsl_content is over the {MAX_DSL_BYTES} byte limit", http_status=413)
        draft = saved_draft(request.name, request.dsl_content, now_ms())
        self.store.put_draft(org, request.name, draft)
        return draft

    def _draft(self, org: str, name: str) -> pb.DraftInfo:
        check_script_name(name)
        draft = self.store.get_draft(org, name)
        if draft is None:
            raise precondition(f"script {name!r} has no draft (save one with SaveScriptDraft)")
        return draft

    def CompileScriptDraft(
        self, org: str, request: pb.CompileScriptDraftRequest, call: Call
    ) -> pb.CompileScriptDraftResponse:
        draft = self._draft(org, request.name)
        compiled = compile_bundle(draft.dsl_content)
        result = apply_compile(draft, compiled)
        self.store.put_draft(org, request.name, result, expected_sha=draft.content_sha256)
        return pb.CompileScriptDraftResponse(
            success=compiled.program is not None,
            ast_json=compiled.ast_json,
            ir_yaml=compiled.ir_yaml,
            diagnostics=compiled.diagnostics,
            tools_required=compiled.tools_required,
            contract=result.contract,
        )

    def GetDraftInfo(self, org: str, request: pb.GetDraftInfoRequest, call: Call) -> pb.DraftInfo:
        check_script_name(request.name)
        draft = self.store.get_draft(org, request.name)
        return draft if draft is not None else pb.DraftInfo(name=request.name, exists=False)

    def TestScriptDraft(
        self, org: str, request: pb.TestScriptDraftRequest, call: Call
    ) -> pb.CreateThreadResponse:
        draft = self._draft(org, request.name)
        if draft.status == pb.VERSION_STATUS_FAILED:
            raise precondition(f"the draft of {request.name!r} failed to compile; fix it and save it again")
        program = program_of_bundle(draft.dsl_content)
        return self._create_thread(
            org, request, script=request.name, requested_version=0, version=0, program=program, draft=True
        )

    def PublishScriptDraft(
        self, org: str, request: pb.PublishScriptDraftRequest, call: Call
    ) -> pb.PublishScriptDraftResponse:
        draft = self._draft(org, request.name)
        if draft.status != pb.VERSION_STATUS_COMPILED:
            state = pb.VersionStatus.Name(draft.status).removeprefix("VERSION_STATUS_")
            raise precondition(
                f"the draft of {request.name!r} is {state}, not COMPILED: compile it (CompileScriptDraft) "
                "before publishing"
            )
        program = program_of_bundle(draft.dsl_content)
        version, previous = self.store.publish(
            org, request.name, program, list(draft.tools_required), draft.content_sha256
        )
        return pb.PublishScriptDraftResponse(version=version, previous_active_version=previous)

    # ---- versions -----------------------------------------------------------------------------

    def RollbackScript(
        self, org: str, request: pb.RollbackScriptRequest, call: Call
    ) -> pb.RollbackScriptResponse:
        check_script_name(request.name)
        if request.to_version < 0:
            raise invalid(
                f"to_version must be >= 1, or 0 for the previously active version; got {request.to_version}"
            )
        if request.expected_active_version < 0:
            raise invalid(f"expected_active_version must be >= 0, got {request.expected_active_version}")
        script, previous, applied = self.store.rollback(
            org,
            request.name,
            request.to_version,
            request.expected_active_version,
            request.reason,
            request.incident_id,
            request.rollback_id,
        )
        if applied:
            self.stats.rollback_applied(org)
        return pb.RollbackScriptResponse(
            script=script, previous_active_version=previous, active_version=script.active_version
        )

    def ListScriptVersions(
        self, org: str, request: pb.ListScriptVersionsRequest, call: Call
    ) -> pb.ListScriptVersionsResponse:
        check_script_name(request.name)
        return self.store.list_versions(org, request.name, request.page_size, request.page_token)

    def GetScriptVersion(self, org: str, request: pb.GetScriptVersionRequest, call: Call) -> pb.ScriptVersion:
        check_script_name(request.name)
        if request.version < 1:
            raise invalid(f"version must be >= 1, got {request.version}")
        return self.store.get_version(org, request.name, request.version)

    def GetScriptCode(
        self, org: str, request: pb.GetScriptCodeRequest, call: Call
    ) -> pb.GetScriptCodeResponse:
        check_script_name(request.name)
        version = self._resolve_version(org, request.name, request.version)
        program = self.store.program(org, request.name, version)
        return pb.GetScriptCodeResponse(
            name=request.name,
            version=version,
            dsl_content=program.bundle,
            ir_yaml=compile_bundle(program.bundle).ir_yaml,
        )

    def _resolve_version(self, org: str, name: str, version: int) -> int:
        if version < 0:
            raise invalid(f"version must be >= 1, or 0 for the active version; got {version}")
        if version:
            return version
        active = self.store.active_version(org, name)
        if active == 0:
            raise precondition(f"script {name!r} has no active version; pin a version")
        return active

    # ---- threads ------------------------------------------------------------------------------

    def CreateThread(self, org: str, request: pb.CreateThreadRequest, call: Call) -> pb.CreateThreadResponse:
        check_script_name(request.script_name, "script_name")
        version = self._resolve_version(org, request.script_name, request.version)
        return self._create_thread(
            org,
            request,
            script=request.script_name,
            requested_version=request.version,
            version=version,
            program=self.store.program(org, request.script_name, version),
            draft=False,
        )

    def _create_thread(
        self,
        org: str,
        run: pb.CreateThreadRequest | pb.TestScriptDraftRequest,
        *,
        script: str,
        requested_version: int,
        version: int,
        program: Program,
        draft: bool,
    ) -> pb.CreateThreadResponse:
        """A new thread (or, for a repeated request id, the existing one); ``run`` gives its input,
        timeout, metadata and env flag (both requests have them)."""
        input_json, load_env, metadata = run.input_json, run.load_env, dict(run.metadata)
        timeout_s = parse_timeout(run.timeout)
        event = check_input_json(input_json)
        self._inputs.check(program.contract, event, f"{script} {'draft' if draft else f'v{version}'}")
        new = NewThread(
            org=org,
            script=script,
            version=version,
            requested_version=requested_version,
            draft=draft,
            input_json=input_json,
            load_env=load_env,
            metadata=metadata,
            request_id=metadata.get(REQUEST_ID_KEY, ""),
            timeout_s=timeout_s,
            draft_program=program if draft else None,
        )
        limit = self.faults.max_in_flight(org)
        if not self.engine.admit(org, limit):
            self.stats.throttled(org)
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{limit} threads of this organization are in flight, the most it may have (fault "
                "max_in_flight); retry later",
                retry_after_s=RETRY_AFTER_S,
            )
        slot = True  # held until the engine takes it
        try:
            thread, created = self.store.create_thread(new)
            if created:
                event_json = fill_defaults(input_json or "{}", event, program.contract)
                self.engine.start(
                    org,
                    thread,
                    ThreadStart(program=program, event_json=event_json, timeout_s=timeout_s),
                    admitted=True,
                )
                slot = False
            else:
                thread = self.engine.thread(org, thread.thread_id)
        finally:
            if slot:
                self.engine.release(org)
        return pb.CreateThreadResponse(
            thread_id=thread.thread_id, status=thread.status, script_name=script, version=thread.version
        )

    def GetThread(self, org: str, request: pb.GetThreadRequest, call: Call) -> pb.Thread:
        _check_thread_id(request.thread_id)
        return self.engine.thread(org, request.thread_id)

    def ListThreads(self, org: str, request: pb.ListThreadsRequest, call: Call) -> pb.ListThreadsResponse:
        if request.page_size < 0:
            raise invalid(f"page_size must be >= 0, got {request.page_size}")
        if request.script_name_filter:
            check_script_name(request.script_name_filter, "script_name_filter")
        limit = min(request.page_size or DEFAULT_THREAD_PAGE, 1000)
        wanted = request.status_filter
        # RUNNING is held in memory only (the store says PENDING until the thread settles).
        unfinished = (pb.THREAD_STATUS_PENDING, pb.THREAD_STATUS_RUNNING)
        statuses: list[int] = list(unfinished) if wanted in unfinished else ([wanted] if wanted else [])
        rows = self.store.list_threads(
            org, statuses, request.script_name_filter, limit + 1, _thread_after(request.page_token)
        )
        page, more = rows[:limit], len(rows) > limit
        threads = []
        for thread in page:
            live = self.engine.live(thread.thread_id, org)
            current = live.snapshot() if live is not None else thread
            if not wanted or current.status == wanted:
                threads.append(current)
        return pb.ListThreadsResponse(
            threads=threads, next_page_token=_thread_token(page[-1]) if more else ""
        )

    def CancelThread(self, org: str, request: pb.CancelThreadRequest, call: Call) -> pb.Thread:
        _check_thread_id(request.thread_id)
        return self.engine.cancel(org, request.thread_id)

    def ResumeThread(self, org: str, request: pb.ResumeThreadRequest, call: Call) -> pb.Thread:
        _check_thread_id(request.thread_id)
        current = self.engine.thread(org, request.thread_id)
        if current.status != pb.THREAD_STATUS_PAUSED or not current.HasField("pending_ask"):
            raise precondition(
                f"thread {request.thread_id!r} is {_status_name(current.status)}, not PAUSED on an ask: "
                "nothing to resume"
            )
        answer = _ask_value(current.pending_ask, request.step_input_override_json)
        prior = self.store.get_thread(org, request.thread_id)
        row = self.store.resume_thread(org, request.thread_id, [*prior.answers, answer])
        if row.draft_bundle is not None:
            program = program_of_bundle(row.draft_bundle)
        else:
            program = self.store.program(org, row.thread.script_name, row.thread.version)
        event = check_input_json(row.input_json)
        start = ThreadStart(
            program=program,
            event_json=fill_defaults(row.input_json or "{}", event, program.contract),
            timeout_s=row.timeout_s,
            answers=tuple(row.answers),
            prior_steps=tuple(row.steps),
            prior_yields=tuple(row.yields),
            last_sequence=row.last_sequence,
        )
        self.engine.start(org, row.thread, start)
        return self.engine.thread(org, request.thread_id)

    def WatchThread(self, org: str, request: pb.WatchThreadRequest, call: Call) -> Iterator[pb.ThreadEvent]:
        _check_thread_id(request.thread_id)
        return self.engine.watch(org, request.thread_id, call.watch())

    def WatchStep(self, org: str, request: pb.WatchStepRequest, call: Call) -> Iterator[pb.StepEvent]:
        _check_thread_id(request.thread_id)
        if not request.step_path:
            raise invalid("step_path is required, e.g. '1' or '1.0.2'")
        return self.engine.watch_step(org, request.thread_id, request.step_path, call.watch())

    def GetThreadResult(
        self, org: str, request: pb.GetThreadResultRequest, call: Call
    ) -> pb.GetThreadResultResponse:
        _check_thread_id(request.thread_id)
        row = self.engine.result_row(org, request.thread_id)
        thread, output = row.thread, row.output
        response = pb.GetThreadResultResponse(
            thread_id=thread.thread_id,
            status=thread.status,
            script_name=thread.script_name,
            version=thread.version,
            output_total_bytes=len(output),
            output_truncated=len(output) > OUTPUT_UNARY_CAP,
            total_yielded=len(row.yields),
        )
        if not request.metadata_only:
            response.output_data = output[:OUTPUT_UNARY_CAP]
        if not request.output_only:
            response.steps.extend(step.summary() for step in row.steps)
            if request.step_path:
                response.step_details.extend(s.detail() for s in row.steps if s.path == request.step_path)
        size = 0
        for value in row.yields[:MAX_INLINE_YIELDS]:
            size += len(value)
            if size > MAX_INLINE_YIELD_BYTES:
                break
            response.yielded_values.append(value)
        response.yields_truncated = len(response.yielded_values) < len(row.yields)
        return response

    def StreamThreadResult(
        self, org: str, request: pb.StreamThreadResultRequest, call: Call
    ) -> Iterator[pb.StreamThreadResultResponse]:
        _check_thread_id(request.thread_id)
        row = self.engine.result_row(org, request.thread_id)
        size = _chunk_size(request.max_chunk_bytes)
        output = row.output
        meta = pb.ThreadOutputMeta(
            thread_id=row.thread.thread_id,
            status=row.thread.status,
            output_total_bytes=len(output),
            chunk_count=max(1, math.ceil(len(output) / size)),
            output_sha256=hashlib.sha256(output).hexdigest(),
        )
        return _stream_output(meta, output, size)

    def StreamStepResult(
        self, org: str, request: pb.StreamStepResultRequest, call: Call
    ) -> Iterator[pb.StreamStepResultResponse]:
        _check_thread_id(request.thread_id)
        row = self.engine.result_row(org, request.thread_id)
        steps = [s for s in row.steps if not request.step_path or s.path == request.step_path]
        if request.step_path and not steps:
            raise not_found(f"thread {request.thread_id!r} has no step {request.step_path!r}")
        return _stream_steps(steps, _chunk_size(request.max_chunk_bytes))

    def ListArtifacts(
        self, org: str, request: pb.ListArtifactsRequest, call: Call
    ) -> pb.ListArtifactsResponse:
        raise unimplemented(
            "ListArtifacts is not implemented (the platform documents it as Unimplemented / Preview)"
        )

    # ---- env ----------------------------------------------------------------------------------

    def SetEnvVar(self, org: str, request: pb.SetEnvVarRequest, call: Call) -> pb.EnvVar:
        _check_env_entry(request.key, request.value, "key")
        return self.store.set_env_var(org, request.key, request.value)

    def GetEnvVar(self, org: str, request: pb.GetEnvVarRequest, call: Call) -> pb.EnvVar:
        check_env_key(request.key)
        found = self.store.get_env_var(org, request.key)
        if found is None:
            raise not_found(f"tenant env key {request.key!r} not found")
        return found

    def ListEnvVars(self, org: str, request: pb.ListEnvVarsRequest, call: Call) -> pb.ListEnvVarsResponse:
        return self.store.list_env_vars(org, request.page_size, request.page_token)

    def DeleteEnvVar(self, org: str, request: pb.DeleteEnvVarRequest, call: Call) -> pb.DeleteEnvVarResponse:
        check_env_key(request.key)
        return pb.DeleteEnvVarResponse(deleted=self.store.delete_env_var(org, request.key))

    def ImportEnvVars(
        self, org: str, request: pb.ImportEnvVarsRequest, call: Call
    ) -> pb.ImportEnvVarsResponse:
        try:
            values = parse_dotenv(request.content, "content")
        except SeedError as exc:
            raise invalid(str(exc)) from None
        for key, value in request.vars.items():
            _check_env_entry(key, value, f"vars[{key!r}]")
        values.update(request.vars)
        for key, value in values.items():
            _check_env_entry(key, value, key)
        keys = self.store.import_env_vars(org, values)
        return pb.ImportEnvVarsResponse(imported=len(keys), keys=keys)

    def GetScriptEnv(self, org: str, request: pb.GetScriptEnvRequest, call: Call) -> pb.ScriptEnv:
        check_script_name(request.name)
        return self.store.script_env(org, request.name)

    def UpdateScriptEnv(self, org: str, request: pb.UpdateScriptEnvRequest, call: Call) -> pb.ScriptEnv:
        check_script_name(request.name)
        for key, value in request.set.items():
            _check_env_entry(key, value, f"set[{key!r}]")
        for index, key in enumerate(request.delete):
            check_env_key(key, f"delete[{index}]")
        both = sorted(set(request.set) & set(request.delete))
        if both:
            raise invalid(f"key(s) {', '.join(both)} are in both 'set' and 'delete'; choose one")
        return self.store.update_script_env(org, request.name, dict(request.set), list(request.delete))

    # ---- dev admin (per organization) ---------------------------------------------------------

    def GetFaults(self, org: str, request: pb.GetFaultsRequest, call: Call) -> pb.Faults:
        return self.faults.get(org)

    def SetFaults(self, org: str, request: pb.Faults, call: Call) -> pb.Faults:
        return self.faults.set(org, request)

    def GetStats(self, org: str, request: pb.GetStatsRequest, call: Call) -> pb.Stats:
        stats = self.stats.snapshot(org)
        return stats

    def ResetStats(self, org: str, request: pb.ResetStatsRequest, call: Call) -> pb.Stats:
        return self.stats.reset(org)


def _stream_output(
    meta: pb.ThreadOutputMeta, output: bytes, size: int
) -> Iterator[pb.StreamThreadResultResponse]:
    yield pb.StreamThreadResultResponse(meta=meta)
    for chunk in _chunks(output, size):
        yield pb.StreamThreadResultResponse(chunk=chunk)


def _stream_steps(steps: list[Any], size: int) -> Iterator[pb.StreamStepResultResponse]:
    for step in steps:
        yield pb.StreamStepResultResponse(step_path=step.path, detail=step.detail(with_output=False))
        for chunk in _chunks(step.output_json.encode("utf-8"), size):
            yield pb.StreamStepResultResponse(step_path=step.path, chunk=chunk)


def _list_page(total: int, page_size: int, page_token: str) -> tuple[int, int, str]:
    if page_size < 0:
        raise invalid(f"page_size must be >= 0, got {page_size}")
    start = 0
    if page_token:
        try:
            start = int(base64.urlsafe_b64decode(page_token.encode()).decode().removeprefix("o:"))
        except (ValueError, UnicodeDecodeError):
            raise invalid(f"page_token {page_token!r} is not a token this server issued") from None
    stop = min(total, start + (page_size or total or 1))
    token = base64.urlsafe_b64encode(f"o:{stop}".encode()).decode() if stop < total else ""
    return start, stop, token


def _check_env_entry(key: str, value: str, field_name: str) -> None:
    check_env_key(key, field_name)
    if "\x00" in value:
        raise invalid(f"{field_name}: the value contains a NUL character")


def _check_thread_id(thread_id: str) -> None:
    if not thread_id:
        raise invalid("thread_id is required")


def skew_versions(message: Any, skew: int) -> None:
    """Faults.version_skew: add `skew` to every version a thread answer reports (in place)."""
    if isinstance(message, (pb.Thread, pb.CreateThreadResponse, pb.GetThreadResultResponse)):
        message.version += skew
    elif isinstance(message, pb.ListThreadsResponse):
        for thread in message.threads:
            thread.version += skew
    elif isinstance(message, pb.ThreadEvent) and message.HasField("thread"):
        message.thread.version += skew
