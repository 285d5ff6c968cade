"""GrpcClient: ScriptumClient over one gRPC channel, wire format read from the server at first use.

Methods are called by path (``/dodil.scriptum.v1.ScriptumService/CreateThread``) with the
serializers of message classes built from the server's reflected descriptors (``_reflection``),
or from the bundled proto when the server has no reflection; never through generated stubs, so
the plugin does not depend on field numbers (DESIGN section 5).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from .._limits import MAX_REQUEST_BYTES, MAX_STREAM_CHUNK_BYTES, RESULT_OUTPUT_CAP_BYTES
from ._base import ClientBase, Sleep
from ._errors import ScriptumError, redact
from ._reflection import reflect
from ._settings import ClientSettings, channel_credentials_for, host_of_target, is_loopback
from ._streams import Stream
from ._wire import Wire, to_dict

__all__ = ["CHANNEL_OPTIONS", "GrpcClient"]

MAX_SEND_BYTES = MAX_REQUEST_BYTES
# GetThreadResult carries up to 4 MiB of output plus steps and yields, and a StreamThreadResult
# chunk may be up to 16 MiB (the documented clamp): room for both.
MAX_RECEIVE_BYTES = RESULT_OUTPUT_CAP_BYTES + MAX_STREAM_CHUNK_BYTES

CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_send_message_length", MAX_SEND_BYTES),
    ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
    # Pings only while calls are in flight (a watch may be silent for minutes), and no more often
    # than a default grpc server tolerates (5 min), so a long watch is never cut off with
    # ENHANCE_YOUR_CALM "too_many_pings".
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.primary_user_agent", "pytest-scriptum"),
)


def _retry_after_s(call: grpc.Call) -> float | None:
    """The server's retry hint: `retry-after-ms` trailing metadata, else the google.rpc.RetryInfo
    of the rich status (`grpc-status-details-bin`); None when it sent neither (or garbage)."""
    details: bytes | None = None
    for key, value in call.trailing_metadata() or ():
        if key.lower() == "retry-after-ms":
            try:
                return max(float(value), 0.0) / 1000.0
            except (TypeError, ValueError):
                return None
        if key.lower() == "grpc-status-details-bin" and isinstance(value, bytes):
            details = value
    return None if details is None else _retry_info_s(details)


def _retry_info_s(details: bytes) -> float | None:
    try:
        status = status_pb2.Status.FromString(details)
        for detail in status.details:
            info = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                nanos: int = info.retry_delay.ToNanoseconds()
                return max(nanos, 0) / 1e9
    except DecodeError:
        return None
    return None


def _closed_error(method: str, exc: Exception | None = None) -> ScriptumError:
    # The caller closed the client (session teardown): like a cancelled call, and pointless to retry.
    return ScriptumError("CANCELLED", "the client is closed" + (f" ({exc})" if exc else ""), method)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


class _GrpcStream(Stream):
    def __init__(self, client: GrpcClient, method: str, call: Any) -> None:
        self._client = client
        self._method = method
        self._call = call
        self._aborted = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for message in self._call:
                yield to_dict(message)
        except grpc.RpcError as exc:
            if self._aborted:
                raise ScriptumError("CANCELLED", "the stream was aborted", self._method) from None
            raise self._client._error(self._method, exc) from None

    def abort(self) -> None:
        self._aborted = True
        self._call.cancel()

    def close(self) -> None:
        self._call.cancel()  # a no-op once the server has ended the stream


class GrpcClient(ClientBase):
    """ScriptumClient over gRPC: one channel, thread-safe, TLS off-loopback unless insecure."""

    transport = "grpc"

    def __init__(self, settings: ClientSettings, *, sleep: Sleep | None = None) -> None:
        super().__init__(settings, sleep=sleep)
        if not settings.endpoint:
            raise ValueError("no Scriptum gRPC endpoint: pass --scriptum-endpoint=HOST:PORT")
        options = list(CHANNEL_OPTIONS)
        if is_loopback(host_of_target(settings.endpoint)):
            options.append(("grpc.enable_http_proxy", 0))  # an http_proxy env var must not capture localhost
        credentials = channel_credentials_for(settings.endpoint, insecure=settings.insecure)
        if credentials is None:
            self._channel = grpc.insecure_channel(settings.endpoint, options=options)
        else:
            self._channel = grpc.secure_channel(settings.endpoint, credentials, options=options)
        # Held by the client, never in a local variable (pytest --showlocals).
        self._metadata = settings.auth_metadata()
        self._lock = threading.Lock()
        self._resolved: Wire | None = None
        # Method name -> multicallable, made once per method (the wire never changes once resolved).
        self._callables: dict[str, Any] = {}
        self._closed = False

    def _close_transport(self) -> None:
        if not self._closed:
            self._closed = True
            self._channel.close()

    def _error(self, method: str, exc: grpc.RpcError) -> ScriptumError:
        token = self._settings.token
        if isinstance(exc, grpc.Call):
            details = exc.details() or exc.code().name
            return ScriptumError(exc.code().name, redact(details, token), method, _retry_after_s(exc))
        return ScriptumError("UNKNOWN", redact(f"{type(exc).__name__}: {exc}", token), method)

    def _wire(self, method: str) -> Wire:
        """The server's descriptors, read once over reflection (bundled ones without reflection)."""
        resolved = self._resolved
        if resolved is not None:
            return resolved
        with self._lock:
            if self._closed:
                raise _closed_error(method)
            if self._resolved is None:
                try:
                    self._resolved = reflect(self._channel, self._settings, method)
                except ValueError as exc:  # grpc raises it for a call on a channel closed meanwhile
                    raise _closed_error(method, exc) from None
            return self._resolved

    def _callable(self, method: str, *, streaming: bool) -> Any:
        found = self._callables.get(method)
        if found is None:
            wire = self._wire(method).method(method)
            if wire.server_streaming != streaming:
                shape = "a server stream" if streaming else "a unary call"
                raise ScriptumError("UNIMPLEMENTED", f"the server's {method} is not {shape}", method)
            make = self._channel.unary_stream if streaming else self._channel.unary_unary
            found = make(wire.path, request_serializer=_serialize,
                         response_deserializer=wire.response.FromString)
            self._callables[method] = found
        return found

    def _call(self, method: str, request: Message, timeout_s: float) -> dict[str, Any]:
        try:
            unary = self._callable(method, streaming=False)
            reply = unary(request, timeout=timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error(method, exc) from None
        except ValueError as exc:  # grpc raises it for a call on a closed channel
            raise _closed_error(method, exc) from None
        return to_dict(reply)

    def _open_stream(self, method: str, request: Message, timeout_s: float) -> Stream:
        try:
            stream = self._callable(method, streaming=True)
            call = stream(request, timeout=timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error(method, exc) from None
        except ValueError as exc:
            raise _closed_error(method, exc) from None
        return _GrpcStream(self, method, call)
