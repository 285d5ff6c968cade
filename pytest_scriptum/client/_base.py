"""What both transports share: request building, argument checks, and the retry loop."""

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

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._errors import ScriptumError
from ._settings import ClientSettings

__all__ = ["READ_METHODS", "ClientBase", "Sleep", "cancelled_error", "retryable_codes"]

log = logging.getLogger("pytest_scriptum.client")

M = TypeVar("M", bound=Message)
T = TypeVar("T")
Sleep = Callable[[float], object]

READ_METHODS: frozenset[str] = frozenset({
    "ListScripts", "GetScript", "ListVersions", "GetVersion", "GetTenantEnv", "ListTenantEnv",
    "GetScriptEnv", "GetThread",
})
_ALWAYS_RETRYABLE = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED"})
# A write that timed out may have happened: only reads are repeated after DEADLINE_EXCEEDED.
# A run is never repeated after it (the platform's TIMED_OUT is the answer, not a retry).
_READ_RETRYABLE = _ALWAYS_RETRYABLE | {"DEADLINE_EXCEEDED"}
_EMPTY: Mapping[str, str] = MappingProxyType({})
MAX_RUN_TIMEOUT_S = 3600.0


def retryable_codes(method: str) -> frozenset[str]:
    """The status names after which a call of ``method`` is attempted again."""
    return _READ_RETRYABLE if method in READ_METHODS else _ALWAYS_RETRYABLE


def cancelled_error(method: str = "RunThread") -> ScriptumError:
    """The error raised when the caller's cancel event stops a run."""
    return ScriptumError("CANCELLED", "run cancelled by the caller", method)


def _encode_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON-serialisable (finite numbers only): {exc}") from None


def _schema_json(schema: Mapping[str, Any] | None, what: str) -> str:
    return "" if schema is None else _encode_json(dict(schema), what)


def _check_timeout(value: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) \
            or not 0 < value <= MAX_RUN_TIMEOUT_S:
        raise ValueError(f"{what} must be a number of seconds in (0, {MAX_RUN_TIMEOUT_S:g}], got {value!r}")


def _check_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")


def _check_version(value: int, what: str, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")


class ClientBase(ABC):
    """Every ScriptumClient method, built on two transport primitives: `_call` and `_run_thread`."""

    transport: str

    def __init__(self, settings: ClientSettings, *, sleep: Sleep | None = None) -> None:
        settings.require_credentials()
        self._settings = settings
        self._sleep = sleep  # injected by tests to observe backoff without waiting

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(endpoint={self._settings.endpoint!r}, "
                f"http_url={self._settings.http_url!r}, org={self._settings.org!r})")

    # ---- transport primitives -------------------------------------------------------------

    @abstractmethod
    def _call(self, method: str, request: Message, response: type[M], timeout_s: float) -> M:
        """One attempt of a unary call; ScriptumError on any failure."""

    @abstractmethod
    def _run_thread(self, request: pb.RunThreadRequest, cancel: threading.Event | None) -> pb.Thread:
        """A whole run, retries included (the request id is already set)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection (idempotent)."""

    # ---- retries ------------------------------------------------------------------------------

    def _invoke(self, method: str, request: Message, response: type[M]) -> M:
        timeout_s = self._settings.call_timeout_s
        return self._retrying(method, lambda: self._call(method, request, response, timeout_s))

    def _retrying(self, method: str, attempt: Callable[[], T], *, cancel: threading.Event | None = None) -> T:
        codes = retryable_codes(method)
        attempts = self._settings.retry.retries + 1
        for number in range(attempts):
            try:
                return attempt()
            except ScriptumError as exc:
                if exc.code not in codes:
                    raise
                if number + 1 == attempts:
                    plural = "s" if attempts > 1 else ""
                    raise ScriptumError(exc.code, f"{exc.message} (gave up after {attempts} attempt{plural})",
                                        method, exc.retry_after_s) from None
                delay = self._settings.retry.delay(number, exc.retry_after_s)
                log.debug("%s: %s on attempt %d of %d, retrying in %.3fs", method, exc.code, number + 1,
                          attempts, delay)
                self._wait(delay, cancel)
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

    def _run_deadline_s(self, request: pb.RunThreadRequest) -> float:
        return request.timeout_seconds + self._settings.run_deadline_margin_s

    # ---- ScriptumClient -----------------------------------------------------------------------

    def list_scripts(self) -> list[pb.Script]:
        """Scripts of the organization, sorted by name."""
        return list(self._invoke("ListScripts", pb.ListScriptsRequest(), pb.ListScriptsResponse).scripts)

    def get_script(self, name: str) -> pb.Script:
        """One script with its active version and activation history."""
        _check_name(name, "script name")
        return self._invoke("GetScript", pb.GetScriptRequest(name=name), pb.Script)

    def list_versions(self, name: str) -> pb.ListVersionsResponse:
        """Every version of a script, with the activation history."""
        _check_name(name, "script name")
        return self._invoke("ListVersions", pb.ListVersionsRequest(name=name), pb.ListVersionsResponse)

    def get_version(self, name: str, version: int) -> pb.Version:
        """One version, including its declared schemas."""
        _check_name(name, "script name")
        _check_version(version, "version")
        return self._invoke("GetVersion", pb.GetVersionRequest(name=name, version=version), pb.Version)

    def import_tenant_env(self, values: Mapping[str, str], *, replace: bool = False) -> list[pb.EnvEntry]:
        """Set tenant env entries (``replace`` deletes every key not given); returns all keys."""
        request = pb.ImportTenantEnvRequest(values=dict(values), replace=replace)
        return list(self._invoke("ImportTenantEnv", request, pb.ImportTenantEnvResponse).entries)

    def get_tenant_env(self, key: str) -> pb.EnvEntry:
        """One tenant env key, without its value."""
        _check_name(key, "env key")
        return self._invoke("GetTenantEnv", pb.GetTenantEnvRequest(key=key), pb.EnvEntry)

    def list_tenant_env(self) -> list[pb.EnvEntry]:
        """Every tenant env key, without values."""
        response = self._invoke("ListTenantEnv", pb.ListTenantEnvRequest(), pb.ListTenantEnvResponse)
        return list(response.entries)

    def get_script_env(self, name: str) -> pb.ScriptEnv:
        """A script's overlay and effective env, keys only."""
        _check_name(name, "script name")
        return self._invoke("GetScriptEnv", pb.GetScriptEnvRequest(name=name), pb.ScriptEnv)

    def update_script_env(self, name: str, set: Mapping[str, str] = _EMPTY,
                          delete: Sequence[str] = ()) -> pb.ScriptEnv:
        """Set and delete overlay keys in one step; returns the new overlay."""
        _check_name(name, "script name")
        if isinstance(delete, str):
            raise ValueError(f"delete must be a sequence of keys, not the string {delete!r}")
        request = pb.UpdateScriptEnvRequest(name=name, set=dict(set), delete=list(delete))
        return self._invoke("UpdateScriptEnv", request, pb.ScriptEnv)

    def create_draft(self, name: str, source: str, *, input_schema: Mapping[str, Any] | None = None,
                     output_schema: Mapping[str, Any] | None = None) -> pb.Draft:
        """Create or replace the script's draft (creating the script if new)."""
        _check_name(name, "script name")
        request = pb.CreateDraftRequest(
            name=name, source=source,
            input_schema_json=_schema_json(input_schema, f"input_schema of {name}"),
            output_schema_json=_schema_json(output_schema, f"output_schema of {name}"),
        )
        return self._invoke("CreateDraft", request, pb.Draft)

    def publish_draft(self, name: str) -> pb.Version:
        """Publish the draft as the next version (not activated)."""
        _check_name(name, "script name")
        return self._invoke("PublishDraft", pb.PublishDraftRequest(name=name), pb.Version)

    def activate_version(self, name: str, version: int, *, expected_active_version: int = 0,
                         reason: str = "") -> pb.Script:
        """Make ``version`` active; compare-and-set when ``expected_active_version`` > 0."""
        _check_name(name, "script name")
        _check_version(version, "version")
        _check_version(expected_active_version, "expected_active_version", minimum=0)
        request = pb.ActivateVersionRequest(name=name, version=version,
                                            expected_active_version=expected_active_version, reason=reason)
        return self._invoke("ActivateVersion", request, pb.Script)

    def rollback_version(self, name: str, to_version: int, *, expected_active_version: int,
                         reason: str, incident_id: str = "") -> pb.Script:
        """Compare-and-set rollback: FAILED_PRECONDITION (``is_conflict``) if someone else acted."""
        _check_name(name, "script name")
        _check_version(to_version, "to_version")
        _check_version(expected_active_version, "expected_active_version")
        request = pb.RollbackVersionRequest(name=name, to_version=to_version,
                                            expected_active_version=expected_active_version,
                                            reason=reason, incident_id=incident_id)
        return self._invoke("RollbackVersion", request, pb.Script)

    def run_thread(self, name: str, version: int, input: Any, *, resolve_env: bool = True,
                   request_id: str | None = None, timeout_s: float = 60.0,
                   cancel: threading.Event | None = None) -> pb.Thread:
        """Run ``name`` pinned to ``version`` and wait for the thread to end.

        A FAILED or TIMED_OUT thread is returned, not raised. Retries reuse one request id, so
        the platform executes the run at most once. A set ``cancel`` event cancels the run and
        raises ScriptumError CANCELLED.
        """
        _check_name(name, "script name")
        _check_version(version, f"version of the run of {name} (runs are always pinned)")
        _check_timeout(timeout_s, f"timeout_s of the run of {name}")
        input_json = _encode_json(input, f"input of the run of {name} v{version}")
        request = pb.RunThreadRequest(
            name=name, version=version, input_json=input_json, resolve_env=resolve_env,
            request_id=request_id or uuid.uuid4().hex, timeout_seconds=float(timeout_s),
        )
        if cancel is not None and cancel.is_set():
            raise cancelled_error()
        return self._run_thread(request, cancel)

    def get_thread(self, thread_id: str) -> pb.Thread:
        """A thread's status, output, error and steps."""
        _check_name(thread_id, "thread id")
        return self._invoke("GetThread", pb.GetThreadRequest(thread_id=thread_id), pb.Thread)

    def cancel_thread(self, thread_id: str) -> pb.Thread:
        """Cancel a queued or running thread (a finished one is returned unchanged)."""
        _check_name(thread_id, "thread id")
        return self._invoke("CancelThread", pb.CancelThreadRequest(thread_id=thread_id), pb.Thread)

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
