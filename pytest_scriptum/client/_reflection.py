"""Reading a server's descriptors over the standard gRPC reflection service (v1alpha).

One request — the file containing ``dodil.scriptum.v1.ScriptumService``, which a reflection
server answers with that file and every file it depends on — fills a descriptor pool the client
then builds its messages from (as grpcurl does). The request carries the same auth metadata as
every call: the platform authenticates reflection too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

import grpc
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from ._contract import SERVICE
from ._errors import ScriptumError, redact
from ._settings import ClientSettings
from ._wire import Wire

__all__ = ["TRANSIENT", "reflect"]

log = logging.getLogger("pytest_scriptum.client")

# Failures of reflection that say nothing about whether the server has it: raised (and retried
# by the caller), never cached as "no reflection".
TRANSIENT = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "CANCELLED"})


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _CallDetails(_Details, grpc.ClientCallDetails):
    pass


if TYPE_CHECKING:
    _Interceptor = grpc.StreamStreamClientInterceptor[Any, Any]
else:  # generic only in grpc-stubs
    _Interceptor = grpc.StreamStreamClientInterceptor


class _AuthAndDeadline(_Interceptor):
    """Adds the auth metadata and a deadline to the reflection stream (the stock reflection
    client sends neither)."""

    def __init__(self, settings: ClientSettings, timeout_s: float) -> None:
        self._settings = settings
        self._timeout_s = timeout_s

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any,
                                request_iterator: Any) -> Any:
        # The metadata is built inside the call expression: no local of this frame holds the token.
        return continuation(_CallDetails(
            client_call_details.method, self._timeout_s, self._settings.auth_metadata(),
            client_call_details.credentials, client_call_details.wait_for_ready,
            client_call_details.compression), request_iterator)


def reflect(channel: grpc.Channel, settings: ClientSettings, method: str) -> Wire:
    """The server's wire, or the bundled one when the server offers no usable reflection.

    ScriptumError (naming ``method``, the call that needed the descriptors) for a transient
    failure; the bundled wire, with ``ApiInfo.detail`` saying why, for any other.
    """
    database = ProtoReflectionDescriptorDatabase(
        grpc.intercept_channel(channel, _AuthAndDeadline(settings, settings.call_timeout_s)))
    try:
        # Asked directly, not through the pool: the pool would turn a transport error into KeyError.
        database.FindFileContainingSymbol(SERVICE)
        return Wire.from_pool(descriptor_pool.DescriptorPool(descriptor_db=database))
    except grpc.RpcError as exc:
        code = exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"
        details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        if code in TRANSIENT:
            raise ScriptumError(code, redact(f"reading the server's descriptors (reflection): {details}",
                                             settings.token), method) from None
        why = f"the server's reflection service refused ({code}: {redact(details or '', settings.token)})"
    except KeyError:
        why = f"the server's reflection service does not know {SERVICE}"
    except (AssertionError, TypeError) as exc:
        # ProtoReflectionDescriptorDatabase asserts on an error answer other than NOT_FOUND; the
        # pool raises TypeError for descriptors it cannot build.
        why = f"the server's reflection answer is unusable ({type(exc).__name__}: {exc})"
    log.info("using the bundled descriptors: %s", why)
    return Wire.bundled(f"{why}; using the descriptors bundled with the plugin (extensions assumed)")
