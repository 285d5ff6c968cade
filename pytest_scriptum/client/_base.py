"""What both transports share: argument checks, the retry loop, and every ScriptumClient method.

A transport supplies three primitives: ``_wire`` (the resolved message classes), ``_call`` (one
attempt of a unary call) and ``_open_stream`` (a server stream). Requests are built here as dicts
of proto field names and responses read the same way, so both transports return identical
records (``_records``). Runs (watching, result streaming, cancel) live in ``_runs``.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

from google.protobuf.message import Message

from .._limits import MAX_THREAD_TIMEOUT_S
from . import _records as r
from . import _runs
from ._errors import ScriptumError, cancelled_error, is_pushback
from ._settings import ClientSettings
from ._streams import AbortOnCancel, Stream
from ._wire import Wire

__all__ = [
    "ALWAYS_RETRYABLE",
    "READ_METHODS",
    "REQUEST_ID_KEY",
    "ClientBase",
    "Sleep",
    "cancelled_error",
    "retryable_codes",
    "timeout_text",
]

log = logging.getLogger("pytest_scriptum.client")

T = TypeVar("T")
Sleep = Callable[[float], object]
Pushback = Callable[[ScriptumError], object]
"""Called with each answer by which the platform pushed back (``is_pushback``) during a call."""
Retry = Callable[[], object]
"""Called before each retry of a call, once its wait is over (the caller may block in it)."""

# Calls that change nothing: repeating one after DEADLINE_EXCEEDED is harmless.
READ_METHODS: frozenset[str] = frozenset({
    "HealthCheck", "ListScripts", "GetScript", "ListScriptVersions", "GetScriptVersion", "GetDraftInfo",
    "GetScriptCode", "GetThread", "ListThreads", "WatchThread", "WatchStep", "GetThreadResult",
    "StreamThreadResult", "StreamStepResult", "ListEnvVars", "GetEnvVar", "GetScriptEnv", "ListTools",
    "ListTemplates", "GetTemplate", "ServerReflectionInfo",
})
ALWAYS_RETRYABLE = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED"})
# A write that timed out may have happened: only reads are repeated after DEADLINE_EXCEEDED.
_READ_RETRYABLE = ALWAYS_RETRYABLE | {"DEADLINE_EXCEEDED"}
_EMPTY: Mapping[str, str] = MappingProxyType({})
# Below a millisecond a timeout cannot be written as "<n>s" with three decimals.
_MIN_RUN_TIMEOUT_S = 0.001
# CreateThreadRequest.metadata key of the client's idempotency key (an EXTENSION by convention).
REQUEST_ID_KEY = "scriptum.request_id"
# A list API whose page token does not progress (documented "Partial") must not loop forever.
_MAX_PAGES = 1000


def retryable_codes(method: str) -> frozenset[str]:
    """The status names after which a call of ``method`` is attempted again."""
    return _READ_RETRYABLE if method in READ_METHODS else ALWAYS_RETRYABLE


def timeout_text(seconds: float) -> str:
    """A thread timeout as the platform writes it: 60 -> "60s", 0.25 -> "0.25s"."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _encode_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable (finite numbers only): {exc}") from None


def _check_timeout(value: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) \
            or not _MIN_RUN_TIMEOUT_S <= value <= MAX_THREAD_TIMEOUT_S:
        raise ValueError(f"{what} must be a number of seconds in [{_MIN_RUN_TIMEOUT_S:g}, "
                         f"{MAX_THREAD_TIMEOUT_S:g}], got {value!r}")


def _check_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")


def _check_version(value: int, what: str, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")


def _check_keys(values: Mapping[str, str], what: str) -> dict[str, str]:
    result = dict(values)
    for key, value in result.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise ValueError(f"{what} must map non-empty string keys to strings, got a value for {key!r}")
    return result


def _int(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


class ClientBase(ABC):
    """Every ScriptumClient method, built on the transport primitives."""

    transport: str

    def __init__(self, settings: ClientSettings, *, sleep: Sleep | None = None) -> None:
        settings.require_credentials()
        self._settings = settings
        self._sleep = sleep  # injected by tests to observe backoff without waiting
        self._aborter = AbortOnCancel()
        # One streamed (over the unary cap) output is reassembled at a time per client: each costs
        # about its own size in memory while it arrives, so a limit of 64 runs in flight must not
        # mean 64 large outputs at once (DESIGN section 6). Smaller outputs are not held back.
        self._output_stream_lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(endpoint={self._settings.endpoint!r}, "
                f"http_url={self._settings.http_url!r}, org={self._settings.org!r}, "
                f"org_name={self._settings.org_name!r})")

    @property
    def settings(self) -> ClientSettings:
        """The settings this client was built with (the token stays out of their repr)."""
        return self._settings

    # ---- transport primitives -------------------------------------------------------------

    @abstractmethod
    def _wire(self, method: str) -> Wire:
        """The message classes in use, resolved once (ScriptumError naming ``method`` if that fails)."""

    @abstractmethod
    def _call(self, method: str, request: Message, timeout_s: float) -> dict[str, Any]:
        """One attempt of a unary call; the response as proto field names; ScriptumError on failure."""

    @abstractmethod
    def _open_stream(self, method: str, request: Message, timeout_s: float) -> Stream:
        """Start a server-streaming call (errors may come from here or from the iteration)."""

    @abstractmethod
    def _close_transport(self) -> None:
        """Release the connection (idempotent)."""

    def close(self) -> None:
        """Release the connection (idempotent); in-flight calls fail with CANCELLED."""
        self._aborter.close()
        self._close_transport()

    # ---- calls and retries ----------------------------------------------------------------

    def _request(self, method: str, fields: Mapping[str, Any]) -> Message:
        return self._wire(method).request(method, fields)

    def _invoke(self, method: str, fields: Mapping[str, Any], *,
                cancel: threading.Event | None = None, on_pushback: Pushback | None = None,
                on_retry: Retry | None = None) -> dict[str, Any]:
        timeout_s = self._settings.call_timeout_s
        return self._retrying(method, lambda: self._call(method, self._request(method, fields), timeout_s),
                              cancel=cancel, on_pushback=on_pushback, on_retry=on_retry)

    def _pages(self, method: str, fields: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
        """Every item of a paginated list call, following ``next_page_token``."""
        items: list[dict[str, Any]] = []
        token = ""
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            page = self._invoke(method, {**fields, "page_token": token})
            items.extend(page.get(key, ()))
            token = page.get("next_page_token", "")
            if not token or token in seen:
                break
            seen.add(token)
        return items

    def _retrying(self, method: str, attempt: Callable[[], T], *, cancel: threading.Event | None = None,
                  on_pushback: Pushback | None = None, on_retry: Retry | None = None) -> T:
        codes = retryable_codes(method)
        attempts = self._settings.retry.retries + 1
        budget = self._settings.retry.budget
        budget.called()
        for number in range(attempts):
            try:
                return attempt()
            except ScriptumError as exc:
                if on_pushback is not None and is_pushback(exc):
                    on_pushback(exc)  # the caller's in-flight limit backs off (runner.InFlightLimit)
                if exc.code not in codes:
                    raise
                if number + 1 == attempts:
                    plural = "s" if attempts > 1 else ""
                    raise ScriptumError(exc.code, f"{exc.message} (gave up after {attempts} attempt{plural})",
                                        method, exc.retry_after_s) from None
                if exc.retry_after_s is None and not budget.take():
                    spent = f"{budget.retries} retries for {budget.calls} calls"
                    raise ScriptumError(exc.code, f"{exc.message} (not retried: the session's retry budget "
                                        f"is spent, {spent})", method, exc.retry_after_s) from None
                delay = self._settings.retry.delay(number, exc.retry_after_s)
                log.debug("%s: %s on attempt %d of %d, retrying in %.3fs", method, exc.code, number + 1,
                          attempts, delay)
                self._wait(delay, cancel)
                if on_retry is not None:
                    # A run refused with a hint gave its in-flight slot back while it waited; the
                    # caller takes one again here, ahead of runs not yet started (runner.InFlightLimit).
                    on_retry()
                if cancel is not None and cancel.is_set():
                    raise cancelled_error(method) from None
        raise AssertionError("unreachable: the loop returns or raises")

    def _wait(self, delay_s: float, cancel: threading.Event | None) -> None:
        if self._sleep is not None:
            self._sleep(delay_s)
        elif cancel is not None:
            cancel.wait(delay_s)
        else:
            time.sleep(delay_s)

    def _info(self, method: str) -> r.ApiInfo:
        return self._wire(method).info

    # ---- ScriptumClient: the API as this server speaks it ---------------------------------

    def api_info(self) -> r.ApiInfo:
        """Descriptors in use, the EXTENSION fields present, fallbacks and problems (cached)."""
        return self._retrying("ServerReflectionInfo", lambda: self._info("ServerReflectionInfo"))

    def health(self) -> r.Health:
        """HealthCheck (no auth needed on the platform)."""
        d = self._invoke("HealthCheck", {})
        return r.Health(d.get("status", ""), d.get("version", ""), _int(d.get("uptime_seconds")))

    # ---- scripts, drafts, versions ----------------------------------------------------------

    def _script(self, d: Mapping[str, Any], method: str) -> r.Script:
        return r.Script.from_dict(d, has_history=self._info(method).has("Script.activation_history"))

    def _version(self, d: Mapping[str, Any], method: str) -> r.ScriptVersion:
        return r.ScriptVersion.from_dict(
            d, has_rolled_back_from=self._info(method).has("ScriptVersion.rolled_back_from"))

    def create_script(self, name: str, *, description: str = "",
                      env: Mapping[str, str] = _EMPTY) -> r.Script:
        """CreateScript: metadata only (and an initial env overlay); ALREADY_EXISTS if taken."""
        _check_name(name, "script name")
        fields = {"name": name, "description": description, "env": _check_keys(env, "env")}
        return self._script(self._invoke("CreateScript", fields), "CreateScript")

    def delete_script(self, name: str) -> None:
        """DeleteScript: the script and every version, draft and overlay of it."""
        _check_name(name, "script name")
        self._invoke("DeleteScript", {"name": name})

    def list_scripts(self) -> list[r.Script]:
        """Every script of the organization (all pages)."""
        return [self._script(d, "ListScripts") for d in self._pages("ListScripts", {}, "scripts")]

    def get_script(self, name: str) -> r.Script:
        """One script: active and latest version, draft status, contract, history (EXTENSION)."""
        _check_name(name, "script name")
        return self._script(self._invoke("GetScript", {"name": name}), "GetScript")

    def list_script_versions(self, name: str) -> list[r.ScriptVersion]:
        """Every published version of a script, ascending."""
        _check_name(name, "script name")
        pages = self._pages("ListScriptVersions", {"name": name}, "versions")
        return [self._version(d, "ListScriptVersions") for d in pages]

    def get_script_version(self, name: str, version: int) -> r.ScriptVersion:
        """One published version with its status and contract."""
        _check_name(name, "script name")
        _check_version(version, "version")
        d = self._invoke("GetScriptVersion", {"name": name, "version": version})
        return self._version(d, "GetScriptVersion")

    def get_draft_info(self, name: str) -> r.DraftInfo:
        """The draft: compile state, diagnostics, contract (``exists`` False without one)."""
        _check_name(name, "script name")
        return r.DraftInfo.from_dict(self._invoke("GetDraftInfo", {"name": name}))

    def save_script_draft(self, name: str, *, dsl_content: str = "", ir_yaml: str = "") -> r.DraftInfo:
        """SaveScriptDraft: DSL source or pre-compiled YAML IR."""
        _check_name(name, "script name")
        if not (dsl_content or ir_yaml):
            raise ValueError("save_script_draft needs dsl_content or ir_yaml")
        fields = {"name": name, "dsl_content": dsl_content, "ir_yaml": ir_yaml}
        return r.DraftInfo.from_dict(self._invoke("SaveScriptDraft", fields))

    def compile_script_draft(self, name: str) -> r.DraftInfo:
        """CompileScriptDraft; the draft's state after it (COMPILED, or FAILED with diagnostics)."""
        _check_name(name, "script name")
        d = self._invoke("CompileScriptDraft", {"name": name})
        return r.DraftInfo.from_dict({
            "name": name, "exists": True, "status": "COMPILED" if d.get("success") else "FAILED",
            "contract": d.get("contract", {}), "diagnostics": d.get("diagnostics", ()),
            "tools_required": d.get("tools_required", ()),
        })

    def publish_script_draft(self, name: str) -> r.PublishResult:
        """PublishScriptDraft: the new version, which is now active, and the one active before."""
        _check_name(name, "script name")
        d = self._invoke("PublishScriptDraft", {"name": name})
        return r.PublishResult(self._version(d.get("version", {}), "PublishScriptDraft"),
                             _int(d.get("previous_active_version")))

    def rollback_script(self, name: str, to_version: int, *, expected_active_version: int = 0,
                        reason: str = "", incident_id: str = "", rollback_id: str = "") -> r.RollbackResult:
        """RollbackScript to ``to_version`` (0 = the previously active version).

        The EXTENSION arguments are sent only when the server's descriptors have them
        (``api_info().extensions``); without ``RollbackScriptRequest.expected_active_version`` the
        caller must emulate the compare-and-set. FAILED_PRECONDITION (``is_conflict``) is a CAS
        conflict and is not retried.
        """
        _check_name(name, "script name")
        _check_version(to_version, "to_version", minimum=0)
        _check_version(expected_active_version, "expected_active_version", minimum=0)
        fields = {"name": name, "to_version": to_version, "expected_active_version": expected_active_version,
                  "reason": reason, "incident_id": incident_id, "rollback_id": rollback_id}
        d = self._invoke("RollbackScript", fields)
        script = self._script(d.get("script", {}), "RollbackScript")
        return r.RollbackResult(script, _int(d.get("previous_active_version")),
                              _int(d.get("active_version")) or script.active_version)

    # ---- threads ----------------------------------------------------------------------------

    def _thread_fields(self, input: Any, *, what: str, timeout_s: float, load_env: bool,
                       request_id: str | None, metadata: Mapping[str, str] | None) -> dict[str, Any]:
        _check_timeout(timeout_s, f"timeout_s of {what}")
        labels = _check_keys(metadata or {}, f"metadata of {what}")
        # A request id given either way is kept; otherwise one is made for this call (and its retries).
        labels[REQUEST_ID_KEY] = request_id or labels.get(REQUEST_ID_KEY) or uuid.uuid4().hex
        return {"input_json": _encode_json(input, f"input of {what}"), "timeout": timeout_text(timeout_s),
                "load_env": bool(load_env), "metadata": labels}

    def _start(self, method: str, fields: Mapping[str, Any], cancel: threading.Event | None,
               on_pushback: Pushback | None = None, on_retry: Retry | None = None) -> str:
        # One request, built once: every retry carries the same request id, so the platform
        # (when it dedupes on it) executes the run at most once.
        if cancel is not None and cancel.is_set():
            raise cancelled_error(method)
        d = self._invoke(method, fields, cancel=cancel, on_pushback=on_pushback, on_retry=on_retry)
        thread_id = d.get("thread_id", "")
        if not thread_id:
            raise ScriptumError("INTERNAL", "the answer carries no thread_id", method)
        return str(thread_id)

    def create_thread(self, name: str, version: int, input: Any, *, load_env: bool = True,
                      timeout_s: float = 60.0, request_id: str | None = None,
                      metadata: Mapping[str, str] | None = None) -> str:
        """CreateThread pinned to ``version`` (>= 1); the thread id, at once."""
        return self._create_thread(name, version, input, load_env=load_env, timeout_s=timeout_s,
                                   request_id=request_id, metadata=metadata, cancel=None)

    def _create_thread(self, name: str, version: int, input: Any, *, load_env: bool, timeout_s: float,
                       request_id: str | None, metadata: Mapping[str, str] | None,
                       cancel: threading.Event | None, on_pushback: Pushback | None = None,
                       on_retry: Retry | None = None) -> str:
        _check_name(name, "script name")
        _check_version(version, f"version of the run of {name} (runs are always pinned)")
        fields = {"script_name": name, "version": version, **self._thread_fields(
            input, what=f"the run of {name} v{version}", timeout_s=timeout_s, load_env=load_env,
            request_id=request_id, metadata=metadata)}
        return self._start("CreateThread", fields, cancel, on_pushback, on_retry)

    def test_script_draft(self, name: str, input: Any, *, load_env: bool = True, timeout_s: float = 60.0,
                          request_id: str | None = None) -> str:
        """TestScriptDraft: run the draft without publishing; the thread id, at once."""
        return self._test_script_draft(name, input, load_env=load_env, timeout_s=timeout_s,
                                       request_id=request_id, cancel=None)

    def _test_script_draft(self, name: str, input: Any, *, load_env: bool, timeout_s: float,
                           request_id: str | None, cancel: threading.Event | None,
                           on_pushback: Pushback | None = None, on_retry: Retry | None = None) -> str:
        _check_name(name, "script name")
        fields = {"name": name, **self._thread_fields(
            input, what=f"the draft run of {name}", timeout_s=timeout_s, load_env=load_env,
            request_id=request_id, metadata=None)}
        return self._start("TestScriptDraft", fields, cancel, on_pushback, on_retry)

    def watch_thread(self, thread_id: str, *, timeout_s: float,
                     cancel: threading.Event | None = None) -> r.Thread:
        """Follow a thread until it is terminal or PAUSED (WatchThread; GetThread polling when the
        stream is refused). The client gives up ``timeout_s + run_deadline_margin_s`` after the
        start, cancelling the thread (DEADLINE_EXCEEDED). A set ``cancel`` cancels the thread and
        raises ScriptumError CANCELLED."""
        _check_name(thread_id, "thread id")
        _check_timeout(timeout_s, "timeout_s of the watch")
        return _runs.watch(self, thread_id, timeout_s + self._settings.run_deadline_margin_s, cancel)

    def get_thread(self, thread_id: str) -> r.Thread:
        """GetThread: status and step progress."""
        _check_name(thread_id, "thread id")
        return r.Thread.from_dict(self._invoke("GetThread", {"thread_id": thread_id}))

    def get_thread_result(self, thread_id: str) -> r.ThreadOutput:
        """GetThreadResult, then StreamThreadResult when the output was truncated (the whole output,
        checked for completeness: DATA_LOSS otherwise)."""
        _check_name(thread_id, "thread id")
        return _runs.result(self, thread_id)

    def run_thread(self, name: str, version: int, input: Any, *, load_env: bool = True,
                   request_id: str | None = None, timeout_s: float = 60.0,
                   cancel: threading.Event | None = None, draft: bool = False,
                   on_pushback: Pushback | None = None,
                   on_created: Callable[[str], object] | None = None,
                   on_retry: Retry | None = None) -> r.RunRecord:
        """Create (``draft``: TestScriptDraft, ``version`` ignored), watch until settled, read the result.

        A FAILED, PAUSED or CANCELLED thread is returned, not raised. Retries of the create call
        reuse one request id (``metadata["scriptum.request_id"]``) and honour the platform's retry
        hint; ``on_pushback`` hears of every pushback answer to the create call (``is_pushback``),
        ``on_retry`` is called before each retry of the create call, once its wait is over,
        ``on_created`` of the thread id once the platform accepted it.
        """
        if draft:
            thread_id = self._test_script_draft(name, input, load_env=load_env, timeout_s=timeout_s,
                                                request_id=request_id, cancel=cancel, on_pushback=on_pushback,
                                                on_retry=on_retry)
        else:
            thread_id = self._create_thread(name, version, input, load_env=load_env, timeout_s=timeout_s,
                                            request_id=request_id, metadata=None, cancel=cancel,
                                            on_pushback=on_pushback, on_retry=on_retry)
        if on_created is not None:
            on_created(thread_id)
        thread = _runs.watch(self, thread_id, timeout_s + self._settings.run_deadline_margin_s, cancel)
        return r.RunRecord(thread, _runs.result_of(self, thread))

    def list_threads(self, *, script_name: str = "", status: str = "") -> list[r.Thread]:
        """ListThreads, newest first, optionally of one script and/or in one status."""
        if status and status not in r.THREAD_STATUSES:
            raise ValueError(f"status must be one of {', '.join(r.THREAD_STATUSES)}, got {status!r}")
        fields: dict[str, Any] = {"script_name_filter": script_name}
        if status:
            wire = self._wire("ListThreads")
            fields["status_filter"] = wire.enum_name("ListThreads", "status_filter", status)
        return [r.Thread.from_dict(d) for d in self._pages("ListThreads", fields, "threads")]

    def cancel_thread(self, thread_id: str) -> r.Thread:
        """CancelThread (a settled thread is returned unchanged; UNIMPLEMENTED on some platforms)."""
        _check_name(thread_id, "thread id")
        return r.Thread.from_dict(self._invoke("CancelThread", {"thread_id": thread_id}))

    def resume_thread(self, thread_id: str, value: Any) -> r.Thread:
        """ResumeThread with ``step_input_override_json`` = JSON of ``value``."""
        _check_name(thread_id, "thread id")
        fields = {"thread_id": thread_id,
                  "step_input_override_json": _encode_json(value, f"the answer to thread {thread_id}")}
        return r.Thread.from_dict(self._invoke("ResumeThread", fields))

    # ---- env, tools, templates ----------------------------------------------------------------

    def list_env_vars(self) -> list[r.EnvVar]:
        """Every tenant env var, with its value (sensitive: kept out of the record's repr)."""
        return [_env_var(d) for d in self._pages("ListEnvVars", {}, "vars")]

    def get_env_var(self, key: str) -> r.EnvVar:
        """One tenant env var, with its value."""
        _check_name(key, "env key")
        return _env_var(self._invoke("GetEnvVar", {"key": key}))

    def set_env_var(self, key: str, value: str) -> r.EnvVar:
        """SetEnvVar."""
        _check_name(key, "env key")
        return _env_var(self._invoke("SetEnvVar", {"key": key, "value": value}))

    def delete_env_var(self, key: str) -> bool:
        """DeleteEnvVar; whether the key existed."""
        _check_name(key, "env key")
        return bool(self._invoke("DeleteEnvVar", {"key": key}).get("deleted", False))

    def import_env_vars(self, values: Mapping[str, str]) -> list[str]:
        """ImportEnvVars (existing keys are overwritten); the keys written."""
        d = self._invoke("ImportEnvVars", {"vars": _check_keys(values, "values")})
        return [str(k) for k in d.get("keys", ())]

    def get_script_env(self, name: str) -> r.ScriptEnv:
        """A script's env overlay (values kept out of the record's repr)."""
        _check_name(name, "script name")
        d = self._invoke("GetScriptEnv", {"name": name})
        return r.ScriptEnv(d.get("name", name), dict(d.get("env", {})))

    def update_script_env(self, name: str, set: Mapping[str, str] = _EMPTY,
                          delete: Sequence[str] = ()) -> r.ScriptEnv:
        """Set and delete overlay keys in one step; the new overlay."""
        _check_name(name, "script name")
        if isinstance(delete, str):
            raise ValueError(f"delete must be a sequence of keys, not the string {delete!r}")
        fields = {"name": name, "set": _check_keys(set, "set"), "delete": list(delete)}
        d = self._invoke("UpdateScriptEnv", fields)
        return r.ScriptEnv(d.get("name", name), dict(d.get("env", {})))

    def list_tools(self) -> list[r.Tool]:
        """The tool catalog."""
        return [
            r.Tool(d.get("tool_id", ""), d.get("name", ""), d.get("version", ""), d.get("description", ""),
                   d.get("kind", ""))
            for d in self._pages("ListTools", {}, "tools")
        ]

    def list_templates(self) -> list[r.Template]:
        """The template catalog (no auth needed on the platform)."""
        return [_template(d) for d in self._pages("ListTemplates", {}, "templates")]

    def get_template(self, template_id: str) -> r.Template:
        """One template (no auth needed on the platform)."""
        _check_name(template_id, "template id")
        return _template(self._invoke("GetTemplate", {"id": template_id}))

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _env_var(d: Mapping[str, Any]) -> r.EnvVar:
    return r.EnvVar(d.get("key", ""), d.get("value", ""), _int(d.get("updated_at_ms")))


def _template(d: Mapping[str, Any]) -> r.Template:
    return r.Template(d.get("id", ""), d.get("name", ""), d.get("description", ""), d.get("dsl_content", ""),
                    dict(d.get("contract", {})))
