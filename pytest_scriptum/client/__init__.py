"""The plugin's Scriptum client: one interface (ScriptumClient) over gRPC and the HTTP gateway.

``connect(settings)`` returns a GrpcClient or an HttpClient by ``settings.transport``. Both speak
the documented API (DESIGN section 5), return the plugin's own records (``_records``: Script,
Thread, ThreadOutput, ...) — identical on both transports — and raise only ScriptumError
(platform errors, after retries) or ValueError (bad arguments). The gRPC client reads the
server's descriptors over reflection at first use (``api_info()`` says what it found).
"""

from __future__ import annotations

from ._contract import EXTENSIONS
from ._errors import ScriptumError
from ._grpc import GrpcClient
from ._http import HttpClient, make_http_client
from ._protocol import ScriptumClient
from ._records import (
    TERMINAL_STATUSES,
    THREAD_STATUSES,
    Activation,
    ApiInfo,
    Diagnostic,
    DraftInfo,
    EnvVar,
    Health,
    PendingAsk,
    PublishResult,
    RollbackResult,
    RunRecord,
    Script,
    ScriptEnv,
    ScriptVersion,
    Step,
    Template,
    Thread,
    ThreadOutput,
    Tool,
    enum_value,
)
from ._settings import ClientSettings, RetryPolicy, channel_credentials_for, is_loopback

__all__ = [
    "EXTENSIONS",
    "TERMINAL_STATUSES",
    "THREAD_STATUSES",
    "Activation",
    "ApiInfo",
    "ClientSettings",
    "Diagnostic",
    "DraftInfo",
    "EnvVar",
    "GrpcClient",
    "Health",
    "HttpClient",
    "PendingAsk",
    "PublishResult",
    "RetryPolicy",
    "RollbackResult",
    "RunRecord",
    "Script",
    "ScriptEnv",
    "ScriptVersion",
    "ScriptumClient",
    "ScriptumError",
    "Step",
    "Template",
    "Thread",
    "ThreadOutput",
    "Tool",
    "channel_credentials_for",
    "connect",
    "enum_value",
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
