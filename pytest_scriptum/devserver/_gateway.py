"""HTTP gateway (docs/http-gateway.md): a Starlette app over ScriptumApi, served by uvicorn in a thread."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import grpc
import uvicorn
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._api import ScriptumApi
from ._auth import Authenticator
from ._errors import ApiError, invalid

__all__ = ["MAX_BODY_BYTES", "GatewayServer", "build_app", "message_to_json"]

MAX_BODY_BYTES = 2 * 1024 * 1024
_INT32_MAX = 2**31 - 1
_log = logging.getLogger("pytest_scriptum.devserver")

# A path parameter never spans '/' or ':' (':' starts a custom verb such as ":rollback").
_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class _Route:
    verb: str
    template: str
    pattern: re.Pattern[str]
    rpc: str
    request_type: type[Message]
    call: Callable[[ScriptumApi, str, Any, threading.Event | None], Message]
    admin: bool = False


def _route(
    verb: str,
    template: str,
    rpc: str,
    request_type: type[Message],
    call: Callable[[ScriptumApi, str, Any, threading.Event | None], Message],
    *,
    admin: bool = False,
) -> _Route:
    regex = _PARAM.sub(
        lambda m: f"(?P<{m.group(1)}>[^/:]+)", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
    )
    return _Route(verb, template, re.compile(regex), rpc, request_type, call, admin)


ROUTES: tuple[_Route, ...] = (
    _route("POST", "/v1/scriptum/tenant/env:import", "ImportTenantEnv", pb.ImportTenantEnvRequest,
           lambda api, org, req, gone: api.import_tenant_env(org, req)),
    _route("GET", "/v1/scriptum/tenant/env", "ListTenantEnv", pb.ListTenantEnvRequest,
           lambda api, org, req, gone: api.list_tenant_env(org, req)),
    _route("GET", "/v1/scriptum/tenant/env/{key}", "GetTenantEnv", pb.GetTenantEnvRequest,
           lambda api, org, req, gone: api.get_tenant_env(org, req)),
    _route("GET", "/v1/scriptum/scripts", "ListScripts", pb.ListScriptsRequest,
           lambda api, org, req, gone: api.list_scripts(org, req)),
    _route("GET", "/v1/scriptum/scripts/{name}", "GetScript", pb.GetScriptRequest,
           lambda api, org, req, gone: api.get_script(org, req)),
    _route("GET", "/v1/scriptum/scripts/{name}/env", "GetScriptEnv", pb.GetScriptEnvRequest,
           lambda api, org, req, gone: api.get_script_env(org, req)),
    _route("PATCH", "/v1/scriptum/scripts/{name}/env", "UpdateScriptEnv", pb.UpdateScriptEnvRequest,
           lambda api, org, req, gone: api.update_script_env(org, req)),
    _route("PUT", "/v1/scriptum/scripts/{name}/draft", "CreateDraft", pb.CreateDraftRequest,
           lambda api, org, req, gone: api.create_draft(org, req)),
    _route("POST", "/v1/scriptum/scripts/{name}/draft:publish", "PublishDraft", pb.PublishDraftRequest,
           lambda api, org, req, gone: api.publish_draft(org, req)),
    _route("GET", "/v1/scriptum/scripts/{name}/versions", "ListVersions", pb.ListVersionsRequest,
           lambda api, org, req, gone: api.list_versions(org, req)),
    _route("GET", "/v1/scriptum/scripts/{name}/versions/{version}", "GetVersion", pb.GetVersionRequest,
           lambda api, org, req, gone: api.get_version(org, req)),
    _route("POST", "/v1/scriptum/scripts/{name}/versions/{version}:activate", "ActivateVersion",
           pb.ActivateVersionRequest, lambda api, org, req, gone: api.activate_version(org, req)),
    _route("POST", "/v1/scriptum/scripts/{name}:rollback", "RollbackVersion", pb.RollbackVersionRequest,
           lambda api, org, req, gone: api.rollback_version(org, req)),
    _route("POST", "/v1/scriptum/scripts/{name}/threads", "RunThread", pb.RunThreadRequest,
           lambda api, org, req, gone: api.run_thread(org, req, gone)),
    _route("GET", "/v1/scriptum/threads/{thread_id}", "GetThread", pb.GetThreadRequest,
           lambda api, org, req, gone: api.get_thread(org, req)),
    _route("POST", "/v1/scriptum/threads/{thread_id}:cancel", "CancelThread", pb.CancelThreadRequest,
           lambda api, org, req, gone: api.cancel_thread(org, req)),
    _route("GET", "/v1/scriptum/admin/faults", "GetFaults", pb.GetFaultsRequest,
           lambda api, org, req, gone: api.get_faults(org, req), admin=True),
    _route("PUT", "/v1/scriptum/admin/faults", "SetFaults", pb.Faults,
           lambda api, org, req, gone: api.set_faults(org, req), admin=True),
    _route("GET", "/v1/scriptum/admin/stats", "GetStats", pb.GetStatsRequest,
           lambda api, org, req, gone: api.get_stats(org, req), admin=True),
    _route("POST", "/v1/scriptum/admin/stats:reset", "ResetStats", pb.ResetStatsRequest,
           lambda api, org, req, gone: api.reset_stats(org, req), admin=True),
)  # fmt: skip


def message_to_json(message: Message) -> dict[str, Any]:
    """A response body: proto field names, default-valued scalar fields included (unset messages omitted)."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _error_response(error: ApiError) -> JSONResponse:
    headers = {}
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    return JSONResponse(
        {"code": error.code_name, "message": error.message}, status_code=error.http_status, headers=headers
    )


class _Gateway:
    def __init__(self, api: ScriptumApi, auth: Authenticator, ready: Callable[[], bool]) -> None:
        self._api = api
        self._auth = auth
        self._ready = ready
        self._limiter: anyio.CapacityLimiter | None = None

    async def ready(self, request: Request) -> Response:
        if not self._ready():
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def health(self, request: Request) -> Response:
        if self._api.stopping.is_set():
            return JSONResponse({"status": "NOT_SERVING"}, status_code=503)
        return JSONResponse({"status": "SERVING"})

    async def dispatch(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except ApiError as error:
            return _error_response(error)
        except Exception:
            _log.exception("unexpected error in %s %s", request.method, request.url.path)
            return JSONResponse(
                {"code": "INTERNAL", "message": "internal error (see the server log)"}, status_code=500
            )

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path
        route, params = self._match(request.method, path)
        if route is not None and not route.admin:
            self._api.stats.count_call(route.rpc)
        org = self._auth.authenticate(
            request.headers.get("authorization"), request.headers.get("x-organization-id")
        )
        if route is None:
            raise self._no_route(request.method, path)
        message = route.request_type()
        if request.method != "GET":
            body = await _read_body(request)
            if body.strip():
                _parse_body(body, message)
        _apply_path_params(message, params)
        if not route.admin:
            await self._apply_faults(route.rpc, request)
        gone = threading.Event() if route.rpc == "RunThread" else None
        response = await self._call_in_thread(
            lambda: route.call(self._api, org, message, gone), request, gone
        )
        skew = 0 if route.admin else self._api.faults.version_skew(route.rpc)
        if skew and isinstance(response, pb.Thread):
            response.version += skew
        return JSONResponse(message_to_json(response))

    def _match(self, verb: str, path: str) -> tuple[_Route | None, dict[str, str]]:
        for route in ROUTES:
            match = route.pattern.fullmatch(path)
            if match is not None and route.verb == verb:
                return route, match.groupdict()
        return None, {}

    def _no_route(self, verb: str, path: str) -> ApiError:
        verbs = sorted({route.verb for route in ROUTES if route.pattern.fullmatch(path)})
        if verbs:
            return ApiError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{verb} is not supported on {path} (allowed: {', '.join(verbs)})",
                http_status=405,
            )
        return ApiError(grpc.StatusCode.NOT_FOUND, f"no route {verb} {path} (see docs/http-gateway.md)")

    async def _apply_faults(self, rpc: str, request: Request) -> None:
        decision = self._api.faults.decide(rpc)
        stopping = self._api.stopping
        if decision.latency_s > 0:
            deadline = time.monotonic() + decision.latency_s
            while not stopping.is_set() and (remaining := deadline - time.monotonic()) > 0:
                await asyncio.sleep(min(remaining, 0.05))
        if decision.stall:
            while not stopping.is_set() and not await request.is_disconnected():
                await asyncio.sleep(0.05)
            raise ApiError(grpc.StatusCode.UNAVAILABLE, f"injected fault (stall) on {rpc}")
        if decision.error is not None:
            raise decision.error

    async def _call_in_thread(
        self, call: Callable[[], Message], request: Request, gone: threading.Event | None
    ) -> Message:
        if self._limiter is None:
            # Created lazily: it must belong to the server's event loop. Sized for >= 32 runs at once.
            self._limiter = anyio.CapacityLimiter(256)
        task = asyncio.ensure_future(anyio.to_thread.run_sync(call, limiter=self._limiter))
        if gone is None:
            return await task
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.1)
            if done:
                return task.result()
            if not gone.is_set() and await request.is_disconnected():
                gone.set()  # the caller went away: cancel the run (stored CANCELLED)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(size)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int) -> ApiError:
    return invalid(
        f"request body is over the {MAX_BODY_BYTES} byte (2 MiB) limit ({size}+ bytes)", http_status=413
    )


def _parse_body(body: bytes, message: Message) -> None:
    try:
        data = json.loads(body)
    except UnicodeDecodeError as exc:
        raise invalid(f"malformed JSON body: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise invalid(f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise invalid("malformed JSON body: nested too deeply") from None
    if not isinstance(data, dict):
        raise invalid(f"request body must be a JSON object, got {type(data).__name__}")
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise invalid(f"invalid request body for {message.DESCRIPTOR.name}: {exc}") from None


def _apply_path_params(message: Message, params: dict[str, str]) -> None:
    for name, raw in params.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        if field.type in (field.TYPE_INT32, field.TYPE_INT64):
            if not raw.isdigit() or int(raw) > _INT32_MAX:
                raise invalid(f"path parameter {name!r}: {raw!r} is not a version number")
            setattr(message, name, int(raw))
        else:
            setattr(message, name, raw)


def build_app(api: ScriptumApi, auth: Authenticator, ready: Callable[[], bool]) -> Starlette:
    """The gateway's ASGI app. `/ready` and `/health` need no credentials; `/v1/...` does."""
    gateway = _Gateway(api, auth, ready)
    # Every verb reaches dispatch, so an unsupported one gets the gateway's JSON error, not Starlette's text.
    verbs = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    return Starlette(
        routes=[
            Route("/ready", gateway.ready, methods=["GET"]),
            Route("/health", gateway.health, methods=["GET"]),
            Route("/v1/{rest:path}", gateway.dispatch, methods=verbs),
        ]
    )


class GatewayServer:
    """uvicorn serving `app` from a background thread on a socket bound before start (no port race)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="scriptum-http", daemon=True
        )

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the HTTP gateway failed to start (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP gateway did not start within {timeout:g} s")
            time.sleep(0.01)

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._socket.close()
