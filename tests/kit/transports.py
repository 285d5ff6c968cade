"""Any ScriptumService / ScriptumDevAdmin method by name, over gRPC or the HTTP gateway.

``GrpcTransport`` and ``HttpTransport`` call a method by name with a request message and return
the response message, so one test table runs over both transports; both raise ``CallError`` with
the gRPC status name for a failed call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
from google.protobuf import json_format
from google.protobuf.message import Message

from kit.constants import AUTH
from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.devserver._gateway import ROUTES

__all__ = [
    "SETTLED",
    "STREAMS",
    "CallError",
    "GrpcTransport",
    "HttpTransport",
    "Transport",
    "create",
    "http_route",
    "response_class",
    "run",
    "settle",
]

_SERVICES = {
    service.name: service
    for service in (
        pb.DESCRIPTOR.services_by_name["ScriptumService"],
        pb.DESCRIPTOR.services_by_name["ScriptumDevAdmin"],
    )
}
STREAMS = frozenset({"WatchThread", "WatchStep", "StreamThreadResult", "StreamStepResult"})
SETTLED = frozenset(
    {pb.THREAD_STATUS_COMPLETED, pb.THREAD_STATUS_FAILED, pb.THREAD_STATUS_CANCELLED, pb.THREAD_STATUS_PAUSED}
)


class CallError(Exception):
    """A failed call on either transport: the gRPC status name and the message."""

    def __init__(self, status: str, message: str, http_status: int = 0) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.http_status = http_status


def _method(name: str) -> Any:
    for service in _SERVICES.values():
        if name in service.methods_by_name:
            return service, service.methods_by_name[name]
    raise KeyError(name)


def response_class(method: str) -> type[Message]:
    cls: type[Message] = getattr(pb, _method(method)[1].output_type.name)
    return cls


@dataclass
class GrpcTransport:
    """Calls over a gRPC channel, by method name."""

    channel: grpc.Channel
    metadata: Sequence[tuple[str, str]] = AUTH
    name: str = "grpc"

    def _path(self, method: str) -> str:
        service, _ = _method(method)
        return f"/{service.full_name}/{method}"

    def call(self, method: str, request: Message, *, timeout: float = 30) -> Any:
        rpc = self.channel.unary_unary(
            self._path(method),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class(method).FromString,
        )
        try:
            return rpc(request, metadata=self.metadata, timeout=timeout)
        except grpc.RpcError as error:
            raise CallError(error.code().name, error.details() or "") from None  # type: ignore[attr-defined]

    def stream(self, method: str, request: Message, *, timeout: float = 60) -> Iterator[Any]:
        rpc = self.channel.unary_stream(
            self._path(method),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class(method).FromString,
        )
        try:
            yield from rpc(request, metadata=self.metadata, timeout=timeout)
        except grpc.RpcError as error:
            raise CallError(error.code().name, error.details() or "") from None  # type: ignore[attr-defined]


def http_route(method: str) -> Any:
    return next(route for route in ROUTES if route.rpc == method)


@dataclass
class HttpTransport:
    """Calls over the HTTP gateway by method name: path parameters from the request's fields, the
    rest as a camelCase body (or query parameters for routes without a body)."""

    client: httpx.Client
    name: str = "http"

    def _request(self, method: str, request: Message) -> tuple[str, str, dict[str, Any], Any]:
        route = http_route(method)
        fields = json_format.MessageToDict(request)
        path = route.template
        for param in route.pattern.groupindex:
            path = path.replace("{" + param + "}", str(getattr(request, param)))
            camel = request.DESCRIPTOR.fields_by_name[param].json_name
            fields.pop(camel, None)
        if route.body:
            return route.verb, path, {}, fields
        # Repeated scalars repeat the parameter (?tags=a&tags=b), as grpc-gateway reads them.
        query = {key: value for key, value in fields.items() if not isinstance(value, dict)}
        return route.verb, path, query, None

    def call(self, method: str, request: Message, *, timeout: float = 30) -> Any:
        verb, path, query, body = self._request(method, request)
        response = self.client.request(verb, path, params=query, json=body, timeout=timeout)
        data = response.json()
        if response.status_code != 200:
            raise CallError(data["status"], data["message"], response.status_code)
        return json_format.ParseDict(data, response_class(method)(), ignore_unknown_fields=True)

    def stream(self, method: str, request: Message, *, timeout: float = 60) -> Iterator[Any]:
        verb, path, query, _ = self._request(method, request)
        with self.client.stream(verb, path, params=query, timeout=timeout) as response:
            if response.status_code != 200:
                response.read()
                data = response.json()
                raise CallError(data["status"], data["message"], response.status_code)
            for line in response.iter_lines():
                if not line:
                    continue
                item = json.loads(line)
                if "error" in item:
                    raise CallError(item["error"]["status"], item["error"]["message"])
                yield json_format.ParseDict(
                    item["result"], response_class(method)(), ignore_unknown_fields=True
                )


Transport = GrpcTransport | HttpTransport


def create(t: Transport, script: str, version: int, input: Any = None, **fields: Any) -> str:
    """CreateThread; the thread id."""
    request = pb.CreateThreadRequest(
        script_name=script, version=version, input_json=json.dumps({} if input is None else input), **fields
    )
    thread_id: str = t.call("CreateThread", request).thread_id
    return thread_id


def settle(t: Transport, thread_id: str) -> pb.Thread:
    """Watch until the thread is terminal or PAUSED; the last event's thread."""
    last = None
    for event in t.stream("WatchThread", pb.WatchThreadRequest(thread_id=thread_id)):
        last = event
    assert last is not None and last.thread.status in SETTLED, last
    thread: pb.Thread = last.thread
    return thread


def run(t: Transport, script: str, version: int, input: Any = None, **fields: Any) -> tuple[pb.Thread, Any]:
    """Create, settle, read the result: (thread, decoded output or None)."""
    thread = settle(t, create(t, script, version, input, **fields))
    result = t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=thread.thread_id))
    return thread, json.loads(result.output_data) if result.output_data else None
