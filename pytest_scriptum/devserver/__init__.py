"""The embedded Scriptum server: a real local implementation of the documented Scriptum API.

`DevServer` runs it in-process; `DevServerProcess` runs `python -m pytest_scriptum.devserver` as a
child process (what `--scriptum-endpoint=embedded` uses); the console script is
`scriptum-devserver` (`pytest_scriptum.devserver.cli`). docs/http-gateway.md is the reference:
routes, bodies, errors, limits, the handler API, ask/resume, faults.

Every ScriptumService RPC is served over gRPC (with health and reflection) and the HTTP gateway
(routes from the proto's google.api.http annotations). Threads are asynchronous; state is SQLite
(WAL), durable across kill -9; a restart fails unfinished threads with PLATFORM_RESTART.

Isolation. Handlers (`handler(event, context)`, the stand-in for a version's `.scriptum` program)
run out of process in warm workers that serve one organization only; a worker is retired after a
run whose handler raised, was killed, or changed its process state (os.environ, the working
directory, sys.path, loaded modules, live threads, signal handlers). Admin and fault calls act on
the caller's organization only. Not isolated: the file system, the network, CPU and memory, and
state hidden where those checks do not look (see `_runtime`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._addresses import ServerAddresses
from ._process import DevServerProcess, DevServerStartError

if TYPE_CHECKING:
    from ._seed import SeedError
    from ._server import DevServer

__all__ = ["DevServer", "DevServerProcess", "DevServerStartError", "SeedError", "ServerAddresses"]


def __getattr__(name: str) -> Any:
    # The in-process server and the seed reader load grpc, uvicorn and lark; a plugin session that
    # only launches the server as a child process (DevServerProcess) must not pay for them, nor
    # import them in the thread that launches it (pytest iterates the logger registry meanwhile).
    if name == "DevServer":
        from ._server import DevServer

        return DevServer
    if name == "SeedError":
        from ._seed import SeedError

        return SeedError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
