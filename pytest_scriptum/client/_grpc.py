"""GrpcClient: ScriptumClient over one gRPC channel."""

from __future__ import annotations

import threading
from typing import Any

import grpc
from google.protobuf.message import Message

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc

from ._base import ClientBase, M, Sleep, cancelled_error
from ._errors import ScriptumError, redact
from ._settings import ClientSettings, channel_credentials_for, host_of_target, is_loopback

__all__ = ["CHANNEL_OPTIONS", "GrpcClient"]

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# How often a run waiting on its RPC looks at the caller's cancel event.
_CANCEL_POLL_S = 0.05

CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Pings only while calls are in flight (a run may be silent for minutes), and no more often
    # than a default grpc server tolerates (5 min), so a long run is never cut off with
    # ENHANCE_YOUR_CALM "too_many_pings".
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.primary_user_agent", "pytest-scriptum"),
)


def _retry_after_s(call: grpc.Call) -> float | None:
    for key, value in call.trailing_metadata() or ():
        if key.lower() == "retry-after-ms":
            try:
                return max(float(value), 0.0) / 1000.0
            except (TypeError, ValueError):
                return None
    return None


def _closed_error(method: str, exc: Exception) -> ScriptumError:
    # The caller closed the client (session teardown): like a cancelled call, and pointless to retry.
    return ScriptumError("CANCELLED", f"the client is closed ({exc})", method)


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
        self._stub = pb_grpc.ScriptumServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {settings.token}"), ("x-organization-id", settings.org))
        self._closed = False

    def close(self) -> None:
        """Close the channel (idempotent); in-flight calls are cancelled."""
        if not self._closed:
            self._closed = True
            self._channel.close()

    def _error(self, method: str, exc: grpc.RpcError) -> ScriptumError:
        token = self._settings.token
        if isinstance(exc, grpc.Call):
            details = exc.details() or exc.code().name
            return ScriptumError(exc.code().name, redact(details, token), method, _retry_after_s(exc))
        return ScriptumError("UNKNOWN", redact(f"{type(exc).__name__}: {exc}", token), method)

    def _call(self, method: str, request: Message, response: type[M], timeout_s: float) -> M:
        callable_: grpc.UnaryUnaryMultiCallable[Message, M] = getattr(self._stub, method)
        try:
            return callable_(request, timeout=timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error(method, exc) from None
        except ValueError as exc:  # grpc raises it for a call on a closed channel
            raise _closed_error(method, exc) from None

    def _run_thread(self, request: pb.RunThreadRequest, cancel: threading.Event | None) -> pb.Thread:
        deadline_s = self._run_deadline_s(request)
        if cancel is None:
            return self._retrying("RunThread",
                                  lambda: self._call("RunThread", request, pb.Thread, deadline_s))
        return self._retrying("RunThread", lambda: self._run_cancellable(request, deadline_s, cancel),
                              cancel=cancel)

    def _run_cancellable(self, request: pb.RunThreadRequest, deadline_s: float,
                         cancel: threading.Event) -> pb.Thread:
        try:
            future = self._stub.RunThread.future(request, timeout=deadline_s, metadata=self._metadata)
        except ValueError as exc:
            raise _closed_error("RunThread", exc) from None
        finished = threading.Event()
        future.add_done_callback(lambda _: finished.set())
        # Cancelling the RPC is what tells the server to cancel the run.
        while not finished.wait(_CANCEL_POLL_S):
            if cancel.is_set() and future.cancel():  # type: ignore[no-untyped-call]  # grpc-stubs gap
                raise cancelled_error()
        try:
            return future.result()
        except grpc.FutureCancelledError:
            raise cancelled_error() from None
        except grpc.RpcError as exc:
            raise self._error("RunThread", exc) from None
