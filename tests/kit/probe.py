"""The inner sessions' conftest: records, per process, every child process the session spawns
(``subprocess.Popen`` audit events, so nothing is patched) and, at unconfigure, the modules the
process loaded (at sessionfinish, again at unconfigure). Written as files under
``$SCRIPTUM_PROBE_DIR`` for the outer test to read."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["PROBE_CONFTEST", "PROBE_DIR_ENV", "modules_loaded", "servers_spawned", "spawned"]

PROBE_DIR_ENV = "SCRIPTUM_PROBE_DIR"

PROBE_CONFTEST = '''
import json
import os
import sys
from pathlib import Path

_DIR = Path(os.environ["SCRIPTUM_PROBE_DIR"])
_DIR.mkdir(parents=True, exist_ok=True)
_PID = os.getpid()


def _audit(event, args):
    if event == "subprocess.Popen":
        command = [str(part) for part in (args[1] or [])]
        with open(_DIR / f"spawned-{_PID}.txt", "a", encoding="utf-8") as out:
            out.write(json.dumps(command) + "\\n")


sys.addaudithook(_audit)


def _write_modules():
    (_DIR / f"modules-{_PID}.json").write_text(json.dumps(sorted(sys.modules)), encoding="utf-8")


def pytest_sessionfinish(session):  # an xdist worker may never reach unconfigure
    _write_modules()


def pytest_unconfigure(config):
    _write_modules()
'''


def spawned(directory: Path) -> list[list[str]]:
    """Every command line the inner session's processes spawned (in no particular order)."""
    commands: list[list[str]] = []
    for path in sorted(directory.glob("spawned-*.txt")):
        commands += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return commands


def servers_spawned(directory: Path) -> list[list[str]]:
    """The embedded servers the inner session started (``python -m pytest_scriptum.devserver``)."""
    return [command for command in spawned(directory) if "pytest_scriptum.devserver" in command]


def modules_loaded(directory: Path) -> dict[int, set[str]]:
    """pid -> the modules that process had loaded at unconfigure (one entry per inner process)."""
    return {
        int(path.stem.split("-", 1)[1]): set(json.loads(path.read_text(encoding="utf-8")))
        for path in directory.glob("modules-*.json")
    }
