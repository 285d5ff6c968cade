"""The embedded Scriptum server: a real local implementation of the Scriptum API.

`DevServer` runs it in-process; `DevServerProcess` runs `python -m pytest_scriptum.devserver` as a
child process (what `--scriptum-endpoint=embedded` uses); the console script is
`scriptum-devserver` (`pytest_scriptum.devserver.cli`).
"""

from ._process import DevServerProcess, DevServerStartError
from ._seed import SeedError
from ._server import DevServer, ServerAddresses

__all__ = ["DevServer", "DevServerProcess", "DevServerStartError", "SeedError", "ServerAddresses"]
