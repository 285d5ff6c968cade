"""The Scriptum API's logic, shared by the gRPC servicers and the HTTP gateway.

Every method takes the caller's organization (already authenticated) and a request message and
returns a response message, or raises ApiError. Nothing here knows about transports.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field

import jsonschema

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._errors import invalid, not_found, precondition
from ._faults import FaultInjector, StatsCounter
from ._runtime import HandlerRuntime, RunOutcome, RunRequest
from ._store import FINAL_STATUSES, NewThread, Store
from ._validation import MAX_INPUT_BYTES, check_env_key, check_script_name

__all__ = ["DEFAULT_TIMEOUT_S", "MAX_TIMEOUT_S", "ScriptumApi"]

DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 3600.0
_STATUS_BY_NAME: dict[str, pb.ThreadStatus.ValueType] = {
    "SUCCEEDED": pb.SUCCEEDED,
    "FAILED": pb.FAILED,
    "TIMED_OUT": pb.TIMED_OUT,
    "CANCELLED": pb.CANCELLED,
}


@dataclass
class _LiveRun:
    """A run executing in this process: how to cancel it and how to wait for it."""

    cancel: threading.Event
    done: threading.Event = field(default_factory=threading.Event)


class ScriptumApi:
    """ScriptumService and ScriptumDevAdmin as plain Python methods."""

    def __init__(
        self, store: Store, runtime: HandlerRuntime, stats: StatsCounter, faults: FaultInjector
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.stats = stats
        self.faults = faults
        self.stopping = threading.Event()
        self._live: dict[str, _LiveRun] = {}
        self._live_lock = threading.Lock()

    def shutdown(self) -> None:
        """Cancel every run in flight (stored CANCELLED) and make stalled calls return."""
        self.stopping.set()
        with self._live_lock:
            runs = list(self._live.values())
        for run in runs:
            run.cancel.set()
        for run in runs:
            run.done.wait(timeout=5.0)

    # ---- tenant env ---------------------------------------------------------------------------

    def import_tenant_env(self, org: str, request: pb.ImportTenantEnvRequest) -> pb.ImportTenantEnvResponse:
        for key, value in request.values.items():
            _check_env_entry(key, value, f"values[{key!r}]")
        entries = self.store.import_tenant_env(org, dict(request.values), request.replace)
        return pb.ImportTenantEnvResponse(entries=entries)

    def get_tenant_env(self, org: str, request: pb.GetTenantEnvRequest) -> pb.EnvEntry:
        check_env_key(request.key)
        entry = self.store.get_tenant_env(org, request.key)
        if entry is None:
            raise not_found(f"tenant env key {request.key!r} not found")
        return entry

    def list_tenant_env(self, org: str, request: pb.ListTenantEnvRequest) -> pb.ListTenantEnvResponse:
        return pb.ListTenantEnvResponse(entries=self.store.list_tenant_env(org))

    # ---- script env ---------------------------------------------------------------------------

    def get_script_env(self, org: str, request: pb.GetScriptEnvRequest) -> pb.ScriptEnv:
        check_script_name(request.name)
        return self.store.script_env(org, request.name)

    def update_script_env(self, org: str, request: pb.UpdateScriptEnvRequest) -> pb.ScriptEnv:
        check_script_name(request.name)
        for key, value in request.set.items():
            _check_env_entry(key, value, f"set[{key!r}]")
        for index, key in enumerate(request.delete):
            check_env_key(key, f"delete[{index}]")
        both = sorted(set(request.set) & set(request.delete))
        if both:
            raise invalid(f"key(s) {', '.join(both)} are in both 'set' and 'delete'; choose one")
        return self.store.update_script_env(org, request.name, dict(request.set), list(request.delete))

    # ---- drafts, scripts, versions ------------------------------------------------------------

    def create_draft(self, org: str, request: pb.CreateDraftRequest) -> pb.Draft:
        check_script_name(request.name)
        if not request.source.strip():
            raise invalid("source: the handler source is empty (it must define handler(event, context))")
        try:
            compile(request.source, "handler.py", "exec")
        except SyntaxError as exc:
            raise invalid(f"source: syntax error at handler.py line {exc.lineno}: {exc.msg}") from None
        except ValueError as exc:  # e.g. NUL bytes
            raise invalid(f"source: cannot be compiled: {exc}") from None
        _check_schema(request.input_schema_json, "input_schema_json")
        _check_schema(request.output_schema_json, "output_schema_json")
        return self.store.put_draft(
            org, request.name, request.source, request.input_schema_json, request.output_schema_json
        )

    def publish_draft(self, org: str, request: pb.PublishDraftRequest) -> pb.Version:
        check_script_name(request.name)
        return self.store.publish_draft(org, request.name)

    def list_scripts(self, org: str, request: pb.ListScriptsRequest) -> pb.ListScriptsResponse:
        return pb.ListScriptsResponse(scripts=self.store.list_scripts(org))

    def get_script(self, org: str, request: pb.GetScriptRequest) -> pb.Script:
        check_script_name(request.name)
        return self.store.get_script(org, request.name)

    def list_versions(self, org: str, request: pb.ListVersionsRequest) -> pb.ListVersionsResponse:
        check_script_name(request.name)
        return self.store.list_versions(org, request.name)

    def get_version(self, org: str, request: pb.GetVersionRequest) -> pb.Version:
        check_script_name(request.name)
        _check_version(request.version, "version")
        return self.store.get_version(org, request.name, request.version)

    def activate_version(self, org: str, request: pb.ActivateVersionRequest) -> pb.Script:
        check_script_name(request.name)
        _check_version(request.version, "version")
        if request.expected_active_version < 0:
            raise invalid(f"expected_active_version must be >= 0, got {request.expected_active_version}")
        return self.store.activate(
            org, request.name, request.version, request.expected_active_version, request.reason
        )

    def rollback_version(self, org: str, request: pb.RollbackVersionRequest) -> pb.Script:
        check_script_name(request.name)
        _check_version(request.to_version, "to_version")
        if request.expected_active_version <= 0:
            raise invalid(
                "expected_active_version is required: the version you believe is active "
                "(the rollback is a compare-and-set)"
            )
        script = self.store.rollback(
            org,
            request.name,
            request.to_version,
            request.expected_active_version,
            request.reason,
            request.incident_id,
        )
        self.stats.rollback_applied()
        return script

    # ---- threads ------------------------------------------------------------------------------

    def run_thread(
        self, org: str, request: pb.RunThreadRequest, client_gone: threading.Event | None = None
    ) -> pb.Thread:
        """Run (or, for a known request id, find) a thread.

        `client_gone` is set by the transport when the caller goes away; a waiting run is then
        cancelled and stored CANCELLED.
        """
        check_script_name(request.name)
        if request.version < 0:
            raise invalid(f"version must be >= 1, or 0 for the active version; got {request.version}")
        timeout_s = _timeout(request.timeout_seconds)
        _check_input(request.input_json)
        version = request.version or self.store.active_version(org, request.name)
        if version == 0:
            raise precondition(f"script {request.name!r} has no active version; pin a version to run")
        source = self.store.version_source(org, request.name, version)
        env = self.store.effective_env_values(org, request.name) if request.resolve_env else None
        thread, created = self.store.create_thread(
            NewThread(
                org=org,
                script=request.name,
                version=version,
                requested_version=request.version,
                input_json=request.input_json,
                env_resolved=request.resolve_env,
                request_id=request.request_id,
                timeout_seconds=timeout_s,
            )
        )
        if not created:
            if request.no_wait:
                return thread
            return self._await_existing(org, thread, client_gone)
        self.stats.run_started()
        cancel = client_gone if client_gone is not None and not request.no_wait else threading.Event()
        live = _LiveRun(cancel=cancel)
        with self._live_lock:
            self._live[thread.thread_id] = live
        run_request = RunRequest(source=source, event_json=request.input_json, env=env, timeout_s=timeout_s)
        if request.no_wait:
            threading.Thread(
                target=self._execute,
                args=(thread.thread_id, run_request, live),
                name=f"scriptum-run-{thread.thread_id[:8]}",
                daemon=True,
            ).start()
            return thread
        self._execute(thread.thread_id, run_request, live)
        return self.store.get_thread(org, thread.thread_id)

    def get_thread(self, org: str, request: pb.GetThreadRequest) -> pb.Thread:
        _check_thread_id(request.thread_id)
        return self.store.get_thread(org, request.thread_id)

    def cancel_thread(self, org: str, request: pb.CancelThreadRequest) -> pb.Thread:
        _check_thread_id(request.thread_id)
        thread = self.store.get_thread(org, request.thread_id)  # NOT_FOUND for another org's thread
        if thread.status in FINAL_STATUSES:
            return thread
        with self._live_lock:
            live = self._live.get(request.thread_id)
        if live is not None:
            live.cancel.set()
            live.done.wait()
        return self.store.get_thread(org, request.thread_id)

    def _await_existing(self, org: str, thread: pb.Thread, client_gone: threading.Event | None) -> pb.Thread:
        if thread.status in FINAL_STATUSES:
            return thread
        with self._live_lock:
            live = self._live.get(thread.thread_id)
        if live is not None:
            # Poll the caller's liveness too: a retry that gives up must not hold a server thread.
            while not live.done.wait(0.05):
                if (client_gone is not None and client_gone.is_set()) or self.stopping.is_set():
                    break
        return self.store.get_thread(org, thread.thread_id)

    def _execute(self, thread_id: str, run_request: RunRequest, live: _LiveRun) -> None:
        try:
            if live.cancel.is_set() or self.stopping.is_set():
                self.stats.run_cancelled_before_start()
                self.store.finish_thread(
                    thread_id,
                    status=pb.CANCELLED,
                    output_json="",
                    error="cancelled before it started",
                    steps=(),
                    env_keys=(),
                    duration_ms=0.0,
                )
                return
            self.store.mark_running(thread_id)
            self.stats.enter_run()
            outcome: RunOutcome | None = None
            try:
                outcome = self.runtime.run(run_request, live.cancel)
            except Exception as exc:  # the runtime itself failed (e.g. closed during shutdown)
                error = f"runtime error: {type(exc).__name__}: {exc}"
                self.store.finish_thread(
                    thread_id,
                    status=pb.FAILED,
                    output_json="",
                    error=error,
                    steps=(),
                    env_keys=(),
                    duration_ms=0.0,
                )
                return
            finally:
                self.stats.exit_run(cancelled=outcome is not None and outcome.status == "CANCELLED")
            self.store.finish_thread(
                thread_id,
                status=_STATUS_BY_NAME[outcome.status],
                output_json=outcome.output_json,
                error=outcome.error,
                steps=[
                    pb.Step(
                        name=step.name,
                        status=step.status,
                        offset_ms=step.offset_ms,
                        duration_ms=step.duration_ms,
                        error=step.error,
                    )
                    for step in outcome.steps
                ],
                env_keys=outcome.env_keys,
                duration_ms=outcome.duration_ms,
            )
        finally:
            live.done.set()
            with self._live_lock:
                self._live.pop(thread_id, None)

    # ---- dev admin ----------------------------------------------------------------------------

    def get_faults(self, org: str, request: pb.GetFaultsRequest) -> pb.Faults:
        return self.faults.get()

    def set_faults(self, org: str, request: pb.Faults) -> pb.Faults:
        return self.faults.set(request)

    def get_stats(self, org: str, request: pb.GetStatsRequest) -> pb.Stats:
        return self.stats.snapshot()

    def reset_stats(self, org: str, request: pb.ResetStatsRequest) -> pb.Stats:
        return self.stats.reset()


def _check_env_entry(key: str, value: str, field_name: str) -> None:
    check_env_key(key, field_name)
    if "\x00" in value:
        raise invalid(f"{field_name}: the value contains a NUL character")


def _check_version(version: int, field_name: str) -> None:
    if version < 1:
        raise invalid(f"{field_name} must be >= 1, got {version}")


def _check_thread_id(thread_id: str) -> None:
    if not thread_id:
        raise invalid("thread_id is required")


def _timeout(timeout_seconds: float) -> float:
    if math.isnan(timeout_seconds) or timeout_seconds < 0:
        raise invalid(f"timeout_seconds must be >= 0 (0 = {DEFAULT_TIMEOUT_S:g}), got {timeout_seconds}")
    if timeout_seconds == 0:
        return DEFAULT_TIMEOUT_S
    if timeout_seconds > MAX_TIMEOUT_S:
        raise invalid(f"timeout_seconds must be <= {MAX_TIMEOUT_S:g}, got {timeout_seconds:g}")
    return float(timeout_seconds)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _check_input(input_json: str) -> None:
    size = len(input_json.encode("utf-8"))
    if size > MAX_INPUT_BYTES:
        raise invalid(
            f"input_json is {size} bytes, over the {MAX_INPUT_BYTES} byte (1 MiB) limit", http_status=413
        )
    if not input_json.strip():
        raise invalid("input_json is required: the handler's event as JSON text (e.g. {} or null)")
    try:
        json.loads(input_json, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise invalid(
            f"input_json is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise invalid(f"input_json is not valid JSON: {exc}") from None


def _check_schema(schema_json: str, field_name: str) -> None:
    if not schema_json:
        return
    try:
        schema = json.loads(schema_json)
    except json.JSONDecodeError as exc:
        raise invalid(
            f"{field_name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(schema, dict):
        raise invalid(f"{field_name} must be a JSON object (a JSON Schema), got {type(schema).__name__}")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise invalid(f"{field_name} is not a valid JSON Schema: {exc.message}") from None
