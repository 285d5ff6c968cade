"""The call pipeline both transports share, and the gRPC handlers built on it.

Every call: authenticate (except HealthCheck, ListTemplates, GetTemplate), count, apply the
caller's organization's faults (latency, stall, injected error), run the API method, add the
version skew, then the after-call latency (unary only). The gRPC handlers are generated from the
service descriptors, one per method, so a method of the proto can never be left unserved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._api import STREAMING_METHODS, Call, ScriptumApi, skew_versions
from ._auth import UNAUTHENTICATED_METHODS, Authenticator
from ._errors import ApiError

__all__ = [
    "ADMIN_SERVICE",
    "SCRIPTUM_SERVICE",
    "Pipeline",
    "grpc_handlers",
    "message_class",
]

_log = logging.getLogger("pytest_scriptum.devserver")

SCRIPTUM_SERVICE = pb.DESCRIPTOR.services_by_name["ScriptumService"].full_name
ADMIN_SERVICE = pb.DESCRIPTOR.services_by_name["ScriptumDevAdmin"].full_name
_STALL_POLL_S = 0.05


def message_class(name: str) -> type[Message]:
    """The generated class of a message of scriptum.proto by its short name."""
    cls: type[Message] = getattr(pb, name)
    return cls


class Pipeline:
    """Auth, stats, faults and skew around ScriptumApi; transport-neutral."""

    def __init__(self, api: ScriptumApi, auth: Authenticator) -> None:
        self.api = api
        self.auth = auth

    def authenticate(self, method: str, headers: Mapping[str, str]) -> str:
        """The caller's organization; "" for an anonymous call of an unauthenticated method."""
        try:
            return self.auth.authenticate(
                headers.get("authorization"),
                headers.get("x-organization-id"),
                headers.get("x-organization-name"),
            )
        except ApiError:
            if method in UNAUTHENTICATED_METHODS:
                return ""
            raise

    def _before(self, org: str, method: str, call: Call, admin: bool) -> float:
        """Count the call and apply the faults that come before it; returns the after-call latency."""
        if admin:
            return 0.0
        self.api.stats.count_call(org, method)
        decision = self.api.faults.decide(org, method)
        if decision.latency_s > 0:
            self._wait(decision.latency_s, call)
        if decision.stall:
            # Hang until the caller gives up (deadline, cancel) or the server stops.
            gone = call.watch()
            while not gone.is_set() and not self.api.stopping.is_set():
                gone.wait(_STALL_POLL_S)
            raise ApiError(grpc.StatusCode.UNAVAILABLE, f"injected fault (stall) on {method}")
        if decision.error is not None:
            raise decision.error
        return decision.latency_after_s

    def _wait(self, seconds: float, call: Call) -> None:
        """Sleep `seconds`, or less when the caller goes away or the server stops."""
        deadline = time.monotonic() + seconds
        gone = call.watch()
        while not gone.is_set() and not self.api.stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            gone.wait(min(remaining, _STALL_POLL_S))

    def unary(self, method: str, org: str, request: Message, call: Call, *, admin: bool = False) -> Message:
        """Run a unary method for `org` (already authenticated)."""
        latency_after = self._before(org, method, call, admin)
        response: Message = getattr(self.api, method)(org, request, call)
        if not admin:
            skew = self.api.faults.version_skew(org, method)
            if skew:
                skew_versions(response, skew)
        if latency_after > 0:
            self._wait(latency_after, call)  # applied, but the answer is late: an ambiguous outcome
        return response

    def stream(self, method: str, org: str, request: Message, call: Call) -> Iterator[Message]:
        """Run a server-streaming method: faults and errors come before the first message."""
        self._before(org, method, call, admin=False)
        items: Iterator[Message] = getattr(self.api, method)(org, request, call)
        skew = self.api.faults.version_skew(org, method)
        return _skewed(items, skew) if skew else items


def _skewed(items: Iterator[Message], skew: int) -> Iterator[Message]:
    for item in items:
        skew_versions(item, skew)
        yield item


class _Malformed:
    """Stands in for a request whose bytes did not parse."""

    def __init__(self, message: str) -> None:
        self.message = message


def _abort(context: grpc.ServicerContext, error: ApiError) -> None:
    if error.retry_after_s is not None:
        context.set_trailing_metadata(_retry_hint(error, error.retry_after_s))
    context.abort(error.code, error.message)


def _retry_hint(error: ApiError, retry_after_s: float) -> tuple[tuple[str, str | bytes], ...]:
    """The retry hint two ways: `retry-after-ms`, and google.rpc.RetryInfo in the rich status
    (`grpc-status-details-bin`), which Google-style platforms and their client libraries use."""
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(round(retry_after_s * 1e9))
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    status = status_pb2.Status(code=error.code_number, message=error.message, details=[detail])
    return (
        ("retry-after-ms", str(round(retry_after_s * 1000))),
        ("grpc-status-details-bin", status.SerializeToString()),
    )


def _lenient(parse: Callable[[bytes], Message], method: str) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        # grpc answers a deserializer's exception with INTERNAL; malformed bytes are the caller's
        # mistake, reported as INVALID_ARGUMENT once the caller is authenticated.
        try:
            return parse(data)
        except Exception as exc:
            return _Malformed(f"malformed {method} request: {exc}")

    return deserialize


def _arm(context: grpc.ServicerContext, call: Call) -> None:
    # The callback fires when the RPC ends for any reason; while the call still runs that means
    # the caller cancelled or its deadline passed.
    if not context.add_callback(call.gone.set):
        call.gone.set()  # already terminated


def _headers(context: grpc.ServicerContext) -> dict[str, str]:
    return {key.lower(): value for key, value in context.invocation_metadata() if isinstance(value, str)}


def grpc_handlers(pipeline: Pipeline) -> list[grpc.GenericRpcHandler[Any, Any]]:
    """Generic handlers serving every method of ScriptumService and ScriptumDevAdmin."""
    handlers = []
    for service in (SCRIPTUM_SERVICE, ADMIN_SERVICE):
        descriptor = pb.DESCRIPTOR.services_by_name[service.rpartition(".")[2]]
        admin = service == ADMIN_SERVICE
        methods = {}
        for method in descriptor.methods:
            request_cls = message_class(method.input_type.name)
            response_cls = message_class(method.output_type.name)
            if method.name in STREAMING_METHODS:
                methods[method.name] = grpc.unary_stream_rpc_method_handler(
                    _stream_behaviour(pipeline, method.name),
                    request_deserializer=_lenient(request_cls.FromString, method.name),
                    response_serializer=response_cls.SerializeToString,
                )
            else:
                methods[method.name] = grpc.unary_unary_rpc_method_handler(
                    _unary_behaviour(pipeline, method.name, admin),
                    request_deserializer=_lenient(request_cls.FromString, method.name),
                    response_serializer=response_cls.SerializeToString,
                )
        handlers.append(grpc.method_handlers_generic_handler(service, methods))
    return handlers


def _unary_behaviour(
    pipeline: Pipeline, method: str, admin: bool
) -> Callable[[Any, grpc.ServicerContext], Any]:
    def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
        call = Call()
        call.arm = lambda: _arm(context, call)
        try:
            org = pipeline.authenticate("" if admin else method, _headers(context))
            if isinstance(request, _Malformed):
                raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, request.message)
            return pipeline.unary(method, org, request, call, admin=admin)
        except ApiError as error:
            _abort(context, error)
        except Exception:
            _log.exception("unexpected error in %s", method)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method} (see the server log)")
        return None  # unreachable: abort raises

    return behaviour


def _stream_behaviour(
    pipeline: Pipeline, method: str
) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
    def behaviour(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        call = Call()
        call.arm = lambda: _arm(context, call)
        try:
            org = pipeline.authenticate(method, _headers(context))
            if isinstance(request, _Malformed):
                raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, request.message)
            yield from pipeline.stream(method, org, request, call)
        except ApiError as error:
            _abort(context, error)
        except Exception:
            _log.exception("unexpected error in %s", method)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method} (see the server log)")

    return behaviour
