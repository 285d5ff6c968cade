"""The fault matrix's calc script, tiny and written here so every expectation is visible:
``calc`` v1 good, v2 bad (active, so a failed gate rolls it back to v1), v3 good (published,
never activated). Every version sleeps ``event["sleep_s"]`` seconds first when asked (the slow
handler option) and reports its version, so a drift or a wrong pin is visible in the output.
"""

from __future__ import annotations

from pathlib import Path

from kit.constants import ORG, TOKEN
from kit.platform import Platform
from kit.seeds import write_seed

__all__ = ["SCRIPT", "calc_platform", "smoke_suite", "write_calc_seed"]

SCRIPT = "calc"

_HANDLER = """
import time

VERSION = {version}


def handler(event, context):
    with context.step("compute"):
        if event.get("sleep_s"):
            time.sleep(float(event["sleep_s"]))
        return {{"doubled": event["x"] * 2 + {bias}, "version": VERSION}}
"""


_BIASES = {1: 0, 2: 1, 3: 0}  # v2 is off by one


def write_calc_seed(root: Path) -> Path:
    """calc v1 (good), v2 (bad: off by one, active), v3 (good, never activated)."""
    return write_seed(
        root,
        script=SCRIPT,
        versions={version: _HANDLER.format(version=version, bias=bias) for version, bias in _BIASES.items()},
        active=2,
        overlay={"MODE": "smoke"},
        tenant_env={"REGION": "eu-test", "API_KEY": "fake-reliability-key-0000"},
    )


def smoke_suite(count: int, *, sleep_s: float = 0.0, marker: str = "") -> str:
    """A test file of ``count`` marker-declared smoke tests that expect the good answer.

    ``marker`` is appended to the module's ``scriptum(...)`` arguments, e.g. ``", timeout=0.5"``.
    """
    sleep = f', "sleep_s": {sleep_s!r}' if sleep_s else ""
    tests = [
        f"""
@pytest.mark.smoke_input({{"x": {i}{sleep}}})
@pytest.mark.smoke_expect({{"doubled": {2 * i}}})
def test_double_{i}():
    pass
"""
        for i in range(count)
    ]
    return f"import pytest\n\npytestmark = pytest.mark.scriptum({SCRIPT!r}{marker})\n" + "".join(tests)


def calc_platform(grpc_target: str, http_url: str) -> Platform:
    """This suite's access to a running server: its token and org, script ``calc``, and inner
    sessions that report failures and errors (``-rfE``); pin a version with ``args(version=N)``."""
    return Platform(grpc_target, http_url, token=TOKEN, org=ORG, script=SCRIPT, session_args=("-rfE",))
