"""HttpClient: ScriptumClient over the HTTP gateway (docs/http-gateway.md)."""

from __future__ import annotations

import email.utils
import string
import threading
import time
from typing import Any
from urllib.parse import quote

import httpx
from google.protobuf import json_format
from google.protobuf.message import Message

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._base import ClientBase, M, Sleep, cancelled_error, log
from ._errors import GRPC_CODE_NAMES, ScriptumError, code_for_http_status, redact
from ._settings import ClientSettings, check_http_url, is_loopback

__all__ = ["ROUTES", "HttpClient", "make_http_client"]

# RPC -> (HTTP method, path). `{field}` is filled from the request field of that name.
ROUTES: dict[str, tuple[str, str]] = {
    "ImportTenantEnv": ("POST", "/v1/scriptum/tenant/env:import"),
    "ListTenantEnv": ("GET", "/v1/scriptum/tenant/env"),
    "GetTenantEnv": ("GET", "/v1/scriptum/tenant/env/{key}"),
    "ListScripts": ("GET", "/v1/scriptum/scripts"),
    "GetScript": ("GET", "/v1/scriptum/scripts/{name}"),
    "GetScriptEnv": ("GET", "/v1/scriptum/scripts/{name}/env"),
    "UpdateScriptEnv": ("PATCH", "/v1/scriptum/scripts/{name}/env"),
    "CreateDraft": ("PUT", "/v1/scriptum/scripts/{name}/draft"),
    "PublishDraft": ("POST", "/v1/scriptum/scripts/{name}/draft:publish"),
    "ListVersions": ("GET", "/v1/scriptum/scripts/{name}/versions"),
    "GetVersion": ("GET", "/v1/scriptum/scripts/{name}/versions/{version}"),
    "ActivateVersion": ("POST", "/v1/scriptum/scripts/{name}/versions/{version}:activate"),
    "RollbackVersion": ("POST", "/v1/scriptum/scripts/{name}:rollback"),
    "RunThread": ("POST", "/v1/scriptum/scripts/{name}/threads"),
    "GetThread": ("GET", "/v1/scriptum/threads/{thread_id}"),
    "CancelThread": ("POST", "/v1/scriptum/threads/{thread_id}:cancel"),
}
_PATH_FIELDS: dict[str, tuple[str, ...]] = {
    method: tuple(name for _, name, _, _ in string.Formatter().parse(path) if name)
    for method, (_, path) in ROUTES.items()
}
_UNFINISHED = (pb.THREAD_STATUS_UNSPECIFIED, pb.QUEUED, pb.RUNNING)
# Polling a no_wait run: start fast (most smoke runs are short), back off to a modest rate.
_POLL_FIRST_S = 0.01
_POLL_MAX_S = 0.2
_POLL_GROWTH = 1.5
_MAX_ERROR_TEXT = 500


def make_http_client(settings: ClientSettings) -> httpx.Client:
    """An httpx client on the gateway: base URL, auth headers and the call timeout set.

    ValueError when there is no URL, or it is plaintext to a non-loopback host without ``insecure``.
    """
    settings.require_credentials()
    if not settings.http_url:
        raise ValueError("no Scriptum HTTP gateway URL: pass --scriptum-http-url=URL")
    url = check_http_url(settings.http_url, insecure=settings.insecure)
    return httpx.Client(
        base_url=url,
        headers={"authorization": f"Bearer {settings.token}", "x-organization-id": settings.org},
        timeout=settings.call_timeout_s,
        # Proxy env vars are for the outside world; a loopback gateway is reached directly.
        trust_env=not is_loopback(url.host),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=32),
    )


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class HttpClient(ClientBase):
    """ScriptumClient over the HTTP gateway; responses parse into the same proto messages as gRPC."""

    transport = "http"

    def __init__(self, settings: ClientSettings, *, sleep: Sleep | None = None) -> None:
        super().__init__(settings, sleep=sleep)
        self._http = make_http_client(settings)

    def close(self) -> None:
        """Close the connection pool (idempotent)."""
        self._http.close()

    def _error_from_response(self, method: str, response: httpx.Response) -> ScriptumError:
        code = ""
        message = ""
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            code = str(body.get("code", "")).upper()
            message = str(body.get("message", ""))
        if code not in GRPC_CODE_NAMES:
            code = code_for_http_status(response.status_code)
        if not message:
            text = response.text.strip()[:_MAX_ERROR_TEXT]
            message = f"HTTP {response.status_code} {response.reason_phrase}" + (f": {text}" if text else "")
        return ScriptumError(code, redact(message, self._settings.token), method, _retry_after_s(response))

    def _call(self, method: str, request: Message, response: type[M], timeout_s: float) -> M:
        verb, template = ROUTES[method]
        fields = _PATH_FIELDS[method]
        path = template.format(**{name: quote(str(getattr(request, name)), safe="") for name in fields})
        body: dict[str, Any] | None = None
        if verb != "GET":
            body = json_format.MessageToDict(request, preserving_proto_field_name=True)
            for name in fields:
                body.pop(name, None)
        # No local variable holds the token: pytest --showlocals prints the locals of this frame.
        try:
            reply = self._http.request(verb, path, json=body, timeout=timeout_s)
        except httpx.TimeoutException as exc:
            raise ScriptumError("DEADLINE_EXCEEDED", redact(
                f"no response within {timeout_s:g}s ({type(exc).__name__})", self._settings.token),
                method) from None
        except httpx.TransportError as exc:  # refused, reset, DNS, TLS: the gateway is not reachable
            text = redact(f"{type(exc).__name__}: {exc}", self._settings.token)
            raise ScriptumError("UNAVAILABLE", text, method) from None
        except RuntimeError as exc:  # httpx raises it for a request on a closed client
            # The caller closed the client (session teardown): like a cancelled call, pointless to retry.
            raise ScriptumError("CANCELLED", f"the client is closed ({exc})", method) from None
        if not reply.is_success:
            raise self._error_from_response(method, reply)
        try:
            return json_format.ParseDict(reply.json(), response(), ignore_unknown_fields=True)
        except (ValueError, json_format.ParseError) as exc:
            raise ScriptumError("INTERNAL", redact(
                f"unreadable {response.DESCRIPTOR.name} from the gateway: {exc}", self._settings.token),
                method) from None

    def _run_thread(self, request: pb.RunThreadRequest, cancel: threading.Event | None) -> pb.Thread:
        deadline_s = self._run_deadline_s(request)
        if cancel is None:
            return self._retrying("RunThread",
                                  lambda: self._call("RunThread", request, pb.Thread, deadline_s))
        # A blocking POST cannot be interrupted, so start the run without waiting and poll it.
        started = time.monotonic()
        no_wait = pb.RunThreadRequest()
        no_wait.CopyFrom(request)
        no_wait.no_wait = True
        call_timeout_s = self._settings.call_timeout_s
        thread = self._retrying(
            "RunThread", lambda: self._call("RunThread", no_wait, pb.Thread, call_timeout_s), cancel=cancel)
        interval = _POLL_FIRST_S
        while thread.status in _UNFINISHED:
            if cancel.wait(interval):
                self._cancel_quietly(thread.thread_id)
                raise cancelled_error()
            if time.monotonic() - started > deadline_s:
                self._cancel_quietly(thread.thread_id)
                raise ScriptumError(
                    "DEADLINE_EXCEEDED",
                    f"thread {thread.thread_id} still {pb.ThreadStatus.Name(thread.status)} {deadline_s:g}s "
                    "after it was started; cancelled it", "RunThread")
            thread = self.get_thread(thread.thread_id)
            interval = min(interval * _POLL_GROWTH, _POLL_MAX_S)
        return thread

    def _cancel_quietly(self, thread_id: str) -> None:
        # Best effort: the caller is already giving up on this run.
        try:
            self.cancel_thread(thread_id)
        except ScriptumError as exc:
            log.debug("could not cancel thread %s: %s", thread_id, exc)
