"""Inner pytest sessions: their smoke ini file, the example suite copied in, and per-test outcomes.

Inner sessions start their own embedded server from a seed (``kit.seeds``), so every test
directory is a self-contained smoke suite exactly as a user would lay it out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from kit.constants import EXAMPLE_SUITE

__all__ = ["copy_example_suite", "outcomes", "wait_all", "write_smoke_ini"]

# "PASSED path::test", "FAILED path::test - message", "ERROR path::test - message" (from -rA).
_SUMMARY_LINE = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)")


def write_smoke_ini(pytester: pytest.Pytester, *, script: str, seed: str = "seed", **extra: str) -> None:
    """A pytest.ini that runs the directory's smoke tests against an embedded server."""
    lines = [
        "[pytest]",
        "scriptum_endpoint = embedded",
        f"scriptum_seed = {seed}",
        f"scriptum_script = {script}",
    ]
    lines += [f"{key} = {value}" for key, value in extra.items()]
    (pytester.path / "pytest.ini").write_text("\n".join(lines) + "\n")


def copy_example_suite(pytester: pytest.Pytester) -> Path:
    """Copy the invoice-parser example suite (without old evidence) into the pytester directory."""
    shutil.copytree(
        EXAMPLE_SUITE,
        pytester.path,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("evidence", "__pycache__", ".pytest_cache"),
    )
    return pytester.path


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Per-test outcomes of an inner session run with ``-rA``: ``{nodeid: "passed" | "failed" | ...}``.

    A test whose setup errors (ERROR) keeps that outcome even though its teardown passed.
    """
    found: dict[str, str] = {}
    for line in result.outlines:
        match = _SUMMARY_LINE.match(line)
        if match is not None:
            outcome, nodeid = match.group(1).lower(), match.group(2)
            if found.get(nodeid) not in ("error", "failed"):
                found[nodeid] = outcome
    return found


def wait_all(running: Mapping[str, subprocess.Popen[str]], label: str, *, timeout: float = 300) -> None:
    """Wait for processes started together (as a CI matrix starts its jobs); each must exit 0,
    else the assertion names ``label``, the job and its output's end. Whatever is still running
    when one fails is killed."""
    try:
        for name, proc in running.items():
            output, _ = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, f"{label} {name}: {(output or '')[-3000:]}"
    finally:
        for proc in running.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
