"""Where a started dev server listens: shared by the server and the child-process launcher, and
stdlib only, so launching a child (``DevServerProcess``) loads no grpc, uvicorn or lark code."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServerAddresses"]


@dataclass(frozen=True)
class ServerAddresses:
    """Where a started server listens."""

    grpc: str  # "127.0.0.1:PORT"
    http: str  # "http://127.0.0.1:PORT"
