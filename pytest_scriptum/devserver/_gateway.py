"""HTTP gateway (docs/http-gateway.md): a Starlette app over the call pipeline, served by uvicorn.

Routes are read at run time from the `google.api.http` annotations of ScriptumService in the
generated descriptors (one source of truth with the proto), additional_bindings included. Bodies
are pbjson as grpc-gateway speaks it: responses in camelCase with every field (int64 as strings,
bytes base64, enums by name); requests accept camelCase and snake_case names and ignore unknown
fields. Path parameters fill the request fields of the same name and win over body and query.
Server streams are newline-delimited JSON, one `{"result": <message>}` per line, an error as a
last `{"error": {...}}` line. Plus `/health`, `/ready` and `/metrics` (no credentials).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import grpc
import uvicorn
from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor as _descriptor
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._api import STREAMING_METHODS, Call
from ._errors import ApiError, invalid
from ._service import ADMIN_SERVICE, SCRIPTUM_SERVICE, Pipeline, message_class

__all__ = ["MAX_BODY_BYTES", "ROUTES", "GatewayServer", "HttpRoute", "build_app", "message_to_json"]

MAX_BODY_BYTES = 2 * 1024 * 1024
_log = logging.getLogger("pytest_scriptum.devserver")
_PARAM = re.compile(r"\{(\w+)\}")
_FD = _descriptor.FieldDescriptor
_DISCONNECT_POLL_S = 0.1


@dataclass(frozen=True)
class HttpRoute:
    """One route: verb, path template, the method it calls, and how the body maps."""

    verb: str
    template: str
    pattern: re.Pattern[str]
    rpc: str
    body: str  # "*" = the whole request; "" = no body (GET/DELETE: query parameters)
    admin: bool = False

    @property
    def literal_segments(self) -> int:
        return sum(1 for part in self.template.split("/") if part and not part.startswith("{"))


def _compile(verb: str, template: str, rpc: str, body: str, admin: bool = False) -> HttpRoute:
    regex = _PARAM.sub(
        lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
    )
    return HttpRoute(verb, template, re.compile(regex), rpc, body, admin)


def _rule_bindings(rule: http_pb2.HttpRule) -> Iterator[tuple[str, str, str]]:
    pattern = rule.WhichOneof("pattern")
    if pattern is not None and pattern != "custom":
        yield pattern.upper(), getattr(rule, pattern), rule.body
    for extra in rule.additional_bindings:
        yield from _rule_bindings(extra)


def _routes_from_descriptors() -> tuple[HttpRoute, ...]:
    routes = []
    for method in pb.DESCRIPTOR.services_by_name["ScriptumService"].methods:
        options = method.GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            continue
        for verb, template, body in _rule_bindings(options.Extensions[annotations_pb2.http]):
            routes.append(_compile(verb, template, method.name, body))
    # Ours (ScriptumDevAdmin has no google.api.http annotations): docs/http-gateway.md.
    routes += [
        _compile("GET", "/v1/scriptum/admin/faults", "GetFaults", "", True),
        _compile("PUT", "/v1/scriptum/admin/faults", "SetFaults", "*", True),
        _compile("GET", "/v1/scriptum/admin/stats", "GetStats", "", True),
        _compile("POST", "/v1/scriptum/admin/stats:reset", "ResetStats", "*", True),
    ]
    # Literal segments first, so /env/import is never read as /env/{key}.
    return tuple(sorted(routes, key=lambda r: -r.literal_segments))


ROUTES: tuple[HttpRoute, ...] = _routes_from_descriptors()


def _input_class(route: HttpRoute) -> type[Message]:
    service = pb.DESCRIPTOR.services_by_name[
        (ADMIN_SERVICE if route.admin else SCRIPTUM_SERVICE).rpartition(".")[2]
    ]
    return message_class(service.methods_by_name[route.rpc].input_type.name)


def message_to_json(message: Message) -> dict[str, Any]:
    """pbjson of a response: camelCase names, every field, int64 as strings, bytes base64."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def _error_body(error: ApiError) -> dict[str, Any]:
    return {"code": error.code_number, "status": error.code_name, "message": error.message, "details": []}


def _error_response(error: ApiError) -> JSONResponse:
    headers = {}
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    return JSONResponse(_error_body(error), status_code=error.http_status, headers=headers)


def _scalar(field: Any, raw: str) -> Any:
    """A query or path value as the field's type (INVALID_ARGUMENT when it is not one)."""
    name = field.name
    try:
        if field.type in (_FD.TYPE_INT32, _FD.TYPE_INT64, _FD.TYPE_SINT32, _FD.TYPE_SINT64, _FD.TYPE_UINT32,
                          _FD.TYPE_UINT64, _FD.TYPE_FIXED32, _FD.TYPE_FIXED64, _FD.TYPE_SFIXED32,
                          _FD.TYPE_SFIXED64):  # fmt: skip
            value = int(raw)
            bits = 32 if field.type in (_FD.TYPE_INT32, _FD.TYPE_SINT32, _FD.TYPE_SFIXED32) else 64
            if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                raise ValueError("out of range")
            return value
        if field.type in (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT):
            return float(raw)
        if field.type == _FD.TYPE_BOOL:
            lowered = raw.lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError("not a boolean")
            return lowered in ("true", "1")
        if field.type == _FD.TYPE_ENUM and field.enum_type is not None:
            enum = field.enum_type
            if raw.lstrip("-").isdigit():
                return int(raw)
            for candidate in (raw, f"{_enum_prefix(enum)}{raw.upper()}"):
                if candidate in enum.values_by_name:
                    return enum.values_by_name[candidate].number
            raise ValueError(f"not a value of {enum.name}")
        if field.type == _FD.TYPE_BYTES:
            return base64.b64decode(
                raw + "=" * (-len(raw) % 4), altchars=b"-_" if "-" in raw or "_" in raw else None
            )
        if field.type == _FD.TYPE_STRING:
            return raw
    except ValueError as exc:
        raise invalid(f"parameter {name!r}: {raw[:100]!r} is invalid ({exc})") from None
    raise invalid(f"parameter {name!r} cannot be given in the URL")


def _enum_prefix(enum: _descriptor.EnumDescriptor) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"


def _field(message: Message, name: str) -> Any:
    descriptor = message.DESCRIPTOR
    return descriptor.fields_by_name.get(name) or descriptor.fields_by_camelcase_name.get(name)


def _apply_query(message: Message, query: list[tuple[str, str]]) -> None:
    for key, raw in query:
        field = _field(message, key)
        if field is None or field.type == _FD.TYPE_MESSAGE:
            continue  # grpc-gateway ignores what it cannot place; so do we
        value = _scalar(field, raw)
        if field.is_repeated:
            getattr(message, field.name).append(value)
        else:
            setattr(message, field.name, value)


def _apply_path(message: Message, params: dict[str, str]) -> None:
    for name, raw in params.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        setattr(message, name, _scalar(field, raw))


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
        json_format.ParseDict(data, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise invalid(f"invalid request body for {message.DESCRIPTOR.name}: {exc}") from None


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


class _Gateway:
    def __init__(self, pipeline: Pipeline, ready: Callable[[], bool]) -> None:
        self._pipeline = pipeline
        self._ready = ready
        self._limiter: anyio.CapacityLimiter | None = None

    def _capacity(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            # Created lazily: it must belong to the server's event loop.
            self._limiter = anyio.CapacityLimiter(256)
        return self._limiter

    async def ready(self, request: Request) -> Response:
        if not self._ready():
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def health(self, request: Request) -> Response:
        if self._pipeline.api.stopping.is_set():
            return JSONResponse({"status": "NOT_SERVING"}, status_code=503)
        return JSONResponse({"status": "SERVING"})

    async def metrics(self, request: Request) -> Response:
        return PlainTextResponse(_metrics_text(self._pipeline), media_type="text/plain; version=0.0.4")

    async def dispatch(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except ApiError as error:
            return _error_response(error)
        except Exception:
            _log.exception("unexpected error in %s %s", request.method, request.url.path)
            return _error_response(ApiError(grpc.StatusCode.INTERNAL, "internal error (see the server log)"))

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path
        route, params = _match(request.method, path)
        if route is None:
            raise _no_route(request.method, path)
        names = ("authorization", "x-organization-id", "x-organization-name")
        headers = {key: request.headers[key] for key in names
                   if key in request.headers}  # fmt: skip
        org = self._pipeline.authenticate("" if route.admin else route.rpc, headers)
        message = _input_class(route)()
        if route.body:
            body = await _read_body(request)
            if body.strip():
                _parse_body(body, message)
        else:
            _apply_query(message, list(request.query_params.multi_items()))
        _apply_path(message, params)
        call = Call()
        if route.rpc in STREAMING_METHODS and not route.admin:
            return await self._stream(route.rpc, org, message, call, request)
        pipeline = self._pipeline
        response = await self._in_thread(
            lambda: pipeline.unary(route.rpc, org, message, call, admin=route.admin), request, call
        )
        return JSONResponse(message_to_json(response))

    async def _in_thread(self, work: Callable[[], Message], request: Request, call: Call) -> Message:
        task = asyncio.ensure_future(anyio.to_thread.run_sync(work, limiter=self._capacity()))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=_DISCONNECT_POLL_S)
                if done:
                    return task.result()
                if not call.gone.is_set() and await request.is_disconnected():
                    call.gone.set()  # stalled or delayed calls return early
        finally:
            call.gone.set()

    async def _stream(self, rpc: str, org: str, message: Message, call: Call, request: Request) -> Response:
        pipeline = self._pipeline
        # Errors before the first message (auth, NOT_FOUND, injected faults) are plain HTTP errors.
        items = await self._in_thread_iter(lambda: pipeline.stream(rpc, org, message, call), request, call)
        first = await anyio.to_thread.run_sync(_next_line, items, limiter=self._capacity())

        async def lines() -> AsyncIterator[bytes]:
            try:
                line = first
                while line is not None:
                    yield line
                    if line.startswith(b'{"error"'):
                        return
                    # Abandoned on cancel (the client went away): the producer then sees `gone`
                    # within its poll interval and ends, instead of holding a thread until the
                    # thread's next event.
                    line = await anyio.to_thread.run_sync(
                        _next_line, items, limiter=self._capacity(), abandon_on_cancel=True
                    )
            finally:
                call.gone.set()  # the client went away or the stream ended: stop the producer

        if first is not None and first.startswith(b'{"error"'):
            error = json.loads(first)["error"]
            return JSONResponse(error, status_code=_HTTP_OF.get(error["status"], 500))
        return StreamingResponse(lines(), media_type="application/x-ndjson")

    async def _in_thread_iter(
        self, work: Callable[[], Iterator[Message]], request: Request, call: Call
    ) -> Iterator[Message]:
        task = asyncio.ensure_future(anyio.to_thread.run_sync(work, limiter=self._capacity()))
        while True:
            done, _ = await asyncio.wait({task}, timeout=_DISCONNECT_POLL_S)
            if done:
                return task.result()
            if not call.gone.is_set() and await request.is_disconnected():
                call.gone.set()


def _next_line(items: Iterator[Message]) -> bytes | None:
    """The next NDJSON line of a stream, an error line, or None at the end."""
    try:
        item = next(items)
    except StopIteration:
        return None
    except ApiError as error:
        return json.dumps({"error": _error_body(error)}).encode() + b"\n"
    except Exception:
        _log.exception("unexpected error in a stream")
        internal = ApiError(grpc.StatusCode.INTERNAL, "internal error (see the server log)")
        return json.dumps({"error": _error_body(internal)}).encode() + b"\n"
    return json.dumps({"result": message_to_json(item)}).encode() + b"\n"


def _status_http() -> dict[str, int]:
    from ._errors import HTTP_STATUS

    return {code.name: status for code, status in HTTP_STATUS.items()}


_HTTP_OF = _status_http()


def _match(verb: str, path: str) -> tuple[HttpRoute | None, dict[str, str]]:
    for route in ROUTES:
        if route.verb != verb:
            continue
        match = route.pattern.fullmatch(path)
        if match is not None:
            return route, match.groupdict()
    return None, {}


def _no_route(verb: str, path: str) -> ApiError:
    verbs = sorted({route.verb for route in ROUTES if route.pattern.fullmatch(path)})
    if verbs:
        return ApiError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{verb} is not supported on {path} (allowed: {', '.join(verbs)})",
            http_status=405,
        )
    return ApiError(grpc.StatusCode.NOT_FOUND, f"no route {verb} {path} (see docs/http-gateway.md)")


def _metrics_text(pipeline: Pipeline) -> str:
    """Prometheus text exposition of the server's counters, summed over organizations."""
    totals = pipeline.api.stats.totals()
    lines = [
        "# HELP scriptum_calls_total ScriptumService calls received, by method.",
        "# TYPE scriptum_calls_total counter",
    ]
    for method, count in sorted(totals["calls"].items()):
        lines.append(f'scriptum_calls_total{{method="{method}"}} {count}')
    for name, key, kind, text in (
        ("scriptum_runs_started_total", "runs_started", "counter", "Handler executions started."),
        ("scriptum_runs_cancelled_total", "runs_cancelled", "counter", "Handler executions cancelled."),
        ("scriptum_rollbacks_applied_total", "rollbacks_applied", "counter", "Rollbacks applied."),
        ("scriptum_workers_started_total", "workers_started", "counter", "Handler worker processes started."),
        ("scriptum_runs_in_flight", "in_flight", "gauge", "Handler executions in flight."),
    ):
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {totals[key]}"]
    uptime = time.monotonic() - pipeline.api.started
    lines += [
        "# HELP scriptum_uptime_seconds Seconds since the server started.",
        "# TYPE scriptum_uptime_seconds gauge",
        f"scriptum_uptime_seconds {uptime:.3f}",
    ]
    return "\n".join(lines) + "\n"


def build_app(pipeline: Pipeline, ready: Callable[[], bool]) -> Starlette:
    """The gateway's ASGI app. `/ready`, `/health`, `/metrics` need no credentials; `/v1/...` does
    (except HealthCheck and the template reads)."""
    gateway = _Gateway(pipeline, ready)
    # Every verb reaches dispatch, so an unsupported one gets the gateway's JSON error, not Starlette's text.
    verbs = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    return Starlette(
        routes=[
            Route("/ready", gateway.ready, methods=["GET"]),
            Route("/health", gateway.health, methods=["GET"]),
            Route("/metrics", gateway.metrics, methods=["GET"]),
            Route("/v1/{rest:path}", gateway.dispatch, methods=verbs),
        ]
    )


# How often a stopping gateway looks whether its connections have closed.
_STOP_POLL_S = 0.005


class _PromptServer(uvicorn.Server):
    """uvicorn's Server, but stopping at once.

    uvicorn 0.54 notices ``should_exit`` on a 0.1 s tick, then sleeps another 0.1 s and waits for
    connections in 0.1 s steps: 0.15-0.3 s at the end of every embedded session, for nothing.
    Here the main loop wakes when ``wake()`` is called (from any thread), and shutdown waits for
    connections in short steps, up to ``timeout_graceful_shutdown``.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        counter = 0
        # on_tick also refreshes the Date header once every 10 ticks: keep ticks about 0.1 s apart.
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            try:
                await asyncio.wait_for(self._wake.wait(), 0.1)
            except asyncio.TimeoutError:
                pass

    def wake(self) -> None:
        """Make the main loop look at ``should_exit`` now (thread-safe; a no-op before it runs,
        when its first tick sees ``should_exit`` anyway)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop already closed
                pass

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # an idle keep-alive connection closes now, a busy one after its answer
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(self.config.timeout_graceful_shutdown or 0)
        while (self.server_state.connections or self.server_state.tasks) and loop.time() < deadline:
            await asyncio.sleep(_STOP_POLL_S)
        for task in self.server_state.tasks:
            task.cancel()
        for server in self.servers:
            await server.wait_closed()


class GatewayServer:
    """uvicorn serving `app` from a background thread on a socket bound before start (no port race)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on accepted sockets whose proto is
        # IPPROTO_TCP, and a proto-0 socket left Nagle on, so uvicorn's separate header and body
        # writes waited for the peer's delayed ACK: about 40 ms on every HTTP call.
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
        self._server = _PromptServer(config)
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
        self._server.wake()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._socket.close()
