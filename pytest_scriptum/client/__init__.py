"""The plugin's Scriptum client: one interface (ScriptumClient) over gRPC and the HTTP gateway.

``connect(settings)`` returns a GrpcClient or an HttpClient by ``settings.transport``; both return
the same ``scriptum_pb2`` messages and raise only ScriptumError (platform errors, after retries)
or ValueError (bad arguments).
"""

from __future__ import annotations

from ._errors import ScriptumError
from ._grpc import GrpcClient
from ._http import HttpClient, make_http_client
from ._protocol import ScriptumClient
from ._settings import ClientSettings, RetryPolicy, channel_credentials_for, is_loopback

__all__ = [
    "ClientSettings",
    "GrpcClient",
    "HttpClient",
    "RetryPolicy",
    "ScriptumClient",
    "ScriptumError",
    "channel_credentials_for",
    "connect",
    "is_loopback",
    "make_http_client",
]


def connect(settings: ClientSettings) -> ScriptumClient:
    """A client on ``settings.transport``: GrpcClient for "grpc", HttpClient for "http".

    Connecting is lazy: an unreachable platform shows up as UNAVAILABLE on the first call.
    """
    if settings.transport == "http":
        return HttpClient(settings)
    return GrpcClient(settings)
