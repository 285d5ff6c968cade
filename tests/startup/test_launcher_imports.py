"""The embedded server is launched from a background thread while pytest collects and runs
(DESIGN section 6). That thread must import nothing: an import there creates loggers while
pytest's logging plugin iterates the logger registry ("dictionary changed size during
iteration", an INTERNALERROR seen in CI). So the launcher, ``DevServerProcess``, loads no grpc,
uvicorn or lark code and creates no logger; the plugin imports it in the main thread.
"""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import json, logging, sys
before = set(logging.root.manager.loggerDict)
from pytest_scriptum.devserver import DevServerProcess
print(json.dumps({
    "loggers": sorted(set(logging.root.manager.loggerDict) - before),
    "heavy": sorted(m for m in ("grpc", "uvicorn", "starlette", "lark") if m in sys.modules),
}))
"""


def test_the_launcher_loads_no_server_code_and_creates_no_logger() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert found == {"loggers": [], "heavy": []}
