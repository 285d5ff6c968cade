"""The plugin's Scriptum client: one interface (ScriptumClient) over gRPC and the HTTP gateway.

``connect(settings)`` returns a GrpcClient or an HttpClient by ``settings.transport``. Both speak
the documented API (DESIGN section 5), return the plugin's own records (``_records``: Script,
Thread, ThreadOutput, ...) — identical on both transports — and raise only ScriptumError
(platform errors, after retries) or ValueError (bad arguments). The gRPC client reads the
server's descriptors over reflection at first use (``api_info()`` says what it found).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import ScriptumError
from ._protocol import ScriptumClient

if TYPE_CHECKING:
    from ._contract import EXTENSIONS
    from ._grpc import GrpcClient
    from ._http import HttpClient, make_http_client
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

# Names whose modules load grpc, httpx or protobuf: imported on first use (PEP 562), so a pytest
# session that selects no smoke test imports no transport code (DESIGN section 6, issue 18). The
# errors and the client protocol above are plain Python and load at once. The records (many
# dataclasses, whose creation is most of the plugin's load time) load with their first use.
_LAZY = {
    "TERMINAL_STATUSES": "._records",
    "THREAD_STATUSES": "._records",
    "Activation": "._records",
    "ApiInfo": "._records",
    "Diagnostic": "._records",
    "DraftInfo": "._records",
    "EnvVar": "._records",
    "Health": "._records",
    "PendingAsk": "._records",
    "PublishResult": "._records",
    "RollbackResult": "._records",
    "RunRecord": "._records",
    "Script": "._records",
    "ScriptEnv": "._records",
    "ScriptVersion": "._records",
    "Step": "._records",
    "Template": "._records",
    "Thread": "._records",
    "ThreadOutput": "._records",
    "Tool": "._records",
    "enum_value": "._records",
    "EXTENSIONS": "._contract",
    "GrpcClient": "._grpc",
    "HttpClient": "._http",
    "make_http_client": "._http",
    "ClientSettings": "._settings",
    "RetryPolicy": "._settings",
    "channel_credentials_for": "._settings",
    "is_loopback": "._settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value

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
        from ._http import HttpClient

        return HttpClient(settings)
    from ._grpc import GrpcClient

    return GrpcClient(settings)
