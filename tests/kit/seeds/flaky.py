"""The repeats seed: ``flaky`` v1 and v2 run the same handler (v2 active, so a failed gate rolls
back to v1). The handler numbers the attempts of a case deterministically: attempt k is the one
that created the file ``<dir>/<case>-k`` first (``O_EXCL``), so N concurrent runs of one case get
1..N whatever order they run in. It fails (``{"ok": false}``) on the attempts ``fail_on`` lists and
kills its own worker process (``PLATFORM_RUNTIME_CRASH``, the platform's failure) on those
``crash_on`` lists; every output says which attempt it was and the version.
"""

from __future__ import annotations

import json
from pathlib import Path

from kit.seeds import write_seed

__all__ = ["SCRIPT", "case_input", "write_flaky_seed"]

SCRIPT = "flaky"

_HANDLER = """
import os

VERSION = {version}


def _claim(directory, case):
    for attempt in range(1, 1000):
        try:
            path = os.path.join(directory, f"{{case}}-{{attempt}}")
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        return attempt
    raise RuntimeError("more than 999 attempts")


def handler(event, context):
    attempt = _claim(event["dir"], event["case"])
    if attempt in event.get("crash_on", []):
        os._exit(3)  # the worker dies: the platform marks the thread PLATFORM_RUNTIME_CRASH
    ok = attempt not in event.get("fail_on", [])
    return {{"ok": ok, "attempt": attempt, "version": VERSION}}
"""


def write_flaky_seed(root: Path) -> Path:
    """flaky v1 and v2, v2 active."""
    return write_seed(
        root,
        script=SCRIPT,
        versions={version: _HANDLER.format(version=version) for version in (1, 2)},
        active=2,
    )


def case_input(
    directory: Path, case: str, *, fail_on: tuple[int, ...] = (), crash_on: tuple[int, ...] = ()
) -> str:
    """The ``smoke_input`` argument (Python source) of one case."""
    value = {"dir": str(directory), "case": case, "fail_on": list(fail_on), "crash_on": list(crash_on)}
    return json.dumps(value)
