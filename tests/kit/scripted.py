"""Helpers of the client tests: client settings with fast retries, and two servers on real loopback
sockets for what the embedded server never does:

- ``ScriptedGrpcServer``: serves ``dodil.scriptum.v1.ScriptumService`` from any descriptor pool
  (the bundled proto, or a copy with every field renumbered or some removed), each method answered
  by a function on dicts of proto field names, with or without the reflection service; it
  records the metadata of every call, reflection included.
- ``ScriptedGateway``: an HTTP server answering each request with the next scripted reply
  (unary JSON or newline-delimited stream lines) and recording what it received.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from grpc_reflection.v1alpha import reflection

from kit.constants import ORG, TOKEN
from kit.wire import SERVICE, scriptum_pool
from pytest_scriptum.client import ClientSettings, RetryPolicy
from pytest_scriptum.client._base import ClientBase

ClientFactory = Callable[..., ClientBase]
Handler = Callable[[dict[str, Any], grpc.ServicerContext], Any]


def fast_retries(retries: int = 2) -> RetryPolicy:
    return RetryPolicy(retries=retries, base_delay_s=0.01, max_delay_s=0.05)


def settings_for(
    grpc_target: str, http_url: str | None, transport: str = "grpc", **overrides: Any
) -> ClientSettings:
    values: dict[str, Any] = {
        "endpoint": grpc_target,
        "http_url": http_url,
        "org": ORG,
        "token": TOKEN,
        "transport": transport,
        "retry": fast_retries(),
    }
    values.update(overrides)
    return ClientSettings(**values)


# ---- a scripted gRPC server ------------------------------------------------------------------------


@dataclass
class SeenCall:
    method: str
    metadata: dict[str, str]


if TYPE_CHECKING:
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
else:  # generic only in grpc-stubs
    _ServerInterceptor = grpc.ServerInterceptor


class _Recorder(_ServerInterceptor):
    def __init__(self, seen: list[SeenCall]) -> None:
        self.seen = seen

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        self.seen.append(SeenCall(details.method.rsplit("/", 1)[-1], dict(details.invocation_metadata)))
        return continuation(details)


class ScriptedGrpcServer:
    """ScriptumService of ``pool`` on a loopback port; ``handlers[method](request_dict, context)``
    returns the response dict (a server stream: an iterable of dicts). Unscripted methods are
    UNIMPLEMENTED, like a platform that lacks them."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        *,
        pool: descriptor_pool.DescriptorPool | None = None,
        reflection_on: bool = True,
    ) -> None:
        self.pool = pool or scriptum_pool()
        self.seen: list[SeenCall] = []
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8), interceptors=[_Recorder(self.seen)]
        )
        service = self.pool.FindServiceByName(SERVICE)
        methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        for method in service.methods:
            if method.name not in handlers:
                continue
            request_type = message_factory.GetMessageClass(method.input_type)
            response_type = message_factory.GetMessageClass(method.output_type)
            function = self._unary if not method.server_streaming else self._streaming
            methods[method.name] = (
                grpc.unary_stream_rpc_method_handler
                if method.server_streaming
                else grpc.unary_unary_rpc_method_handler
            )(
                function(method.name, handlers[method.name], response_type),
                request_deserializer=request_type.FromString,
                response_serializer=lambda m: m.SerializeToString(),
            )
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, methods),))
        if reflection_on:
            reflection.enable_server_reflection(
                (SERVICE, reflection.SERVICE_NAME), self.server, pool=self.pool
            )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.target = f"127.0.0.1:{self.port}"

    def _record(self, name: str, request: Message) -> dict[str, Any]:
        d = json_format.MessageToDict(request, preserving_proto_field_name=True)
        self.requests.setdefault(name, []).append(d)
        return d

    def _unary(self, name: str, handler: Handler, response_type: type[Message]) -> Callable[..., Message]:
        def answer(request: Message, context: grpc.ServicerContext) -> Message:
            return json_format.ParseDict(
                handler(self._record(name, request), context), response_type(), ignore_unknown_fields=True
            )

        return answer

    def _streaming(
        self, name: str, handler: Handler, response_type: type[Message]
    ) -> Callable[..., Iterator[Message]]:
        def answer(request: Message, context: grpc.ServicerContext) -> Iterator[Message]:
            for item in handler(self._record(name, request), context):
                yield json_format.ParseDict(item, response_type(), ignore_unknown_fields=True)

        return answer

    def calls(self, method: str) -> list[SeenCall]:
        return [c for c in self.seen if c.method == method]

    def __enter__(self) -> ScriptedGrpcServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)


# ---- a scripted HTTP gateway ----------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    # A streamed reply: lines written one by one (chunked), each after ``gate`` is set, if given.
    lines: list[str] | None = None
    gate: threading.Event | None = None
    # Nothing at all is sent before ``hold`` is set (a stalled platform).
    hold: threading.Event | None = None


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class ScriptedGateway:
    """Answers each request with the next scripted reply and records what it received."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.seen: list[Seen] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away (a timeout or an abort under test)

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                gateway.seen.append(Seen(self.command, self.path, headers, json.loads(raw) if raw else None))
                reply = gateway.replies.pop(0) if gateway.replies else Reply(500, "no scripted reply")
                if reply.hold is not None:
                    reply.hold.wait(30)
                try:
                    self._send(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away, as some tests intend

            def _send(self, reply: Reply) -> None:
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if reply.lines is None:
                    data = reply.body.encode()
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_header("transfer-encoding", "chunked")
                self.send_header("content-type", "application/x-ndjson")
                self.end_headers()
                self.wfile.flush()
                for line in reply.lines:
                    if reply.gate is not None:
                        reply.gate.wait(30)
                    chunk = (line + "\n").encode()
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.server.daemon_threads = True
        # A short poll interval so shutdown() returns at once instead of after half a second.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def __enter__(self) -> ScriptedGateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def ndjson(*messages: Mapping[str, Any], error: Mapping[str, Any] | None = None) -> list[str]:
    """Stream lines: one {"result": m} per message, then {"error": error} if given."""
    lines = [json.dumps({"result": m}) for m in messages]
    if error is not None:
        lines.append(json.dumps({"error": error}))
    return lines
