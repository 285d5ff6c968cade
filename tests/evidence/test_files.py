"""Evidence files (DESIGN section 4 "One place"): every file the session writes gets the permissions
the user's umask gives any other file (no forced 0600), and every path the bundle names exists."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit.evidence import every_file, read_valid_bundle

RUN = (
    "--scriptum-version=2",
    "--junitxml=evidence/junit.xml",
    "--alluredir=evidence/allure",
    "-p",
    "no:cacheprovider",
)


def _paths_named(value: Any, where: str = "$") -> Iterator[tuple[str, str]]:
    """(where, text) of every string in the bundle that names a file or directory: absolute, or
    under a key that says it is one."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths_named(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths_named(item, f"{where}[{index}]")
    elif isinstance(value, str) and value.startswith("/"):
        yield where, value


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_evidence_files_get_the_mode_the_umask_gives(suite: pytest.Pytester, umask: int, mode: int) -> None:
    previous = os.umask(umask)  # the subprocess inherits it
    try:
        result = suite.runpytest_subprocess(*RUN)
    finally:
        os.umask(previous)
    assert result.ret == 1, result.stdout.str()  # failed, rolled back, verified: every writer ran
    files = list(every_file(suite.path / "evidence"))
    names = {path.name for path in files}
    assert {"scriptum.json", "junit.xml", "junit.verification-v1.xml", "verification-v1.json"} <= names
    assert {"verification-v1.log", "environment.properties", "executor.json"} <= names
    assert any(name.endswith("-result.json") for name in names)
    assert any(name.endswith("-attachment.json") for name in names)
    modes = {str(path.relative_to(suite.path)): oct(stat.S_IMODE(path.stat().st_mode)) for path in files}
    assert {name: found for name, found in modes.items() if found != oct(mode)} == {}


def test_every_path_the_bundle_names_exists(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess(*RUN)
    assert result.ret == 1, result.stdout.str()
    bundle = read_valid_bundle(suite.path / "evidence" / "scriptum.json")
    named = dict(_paths_named(bundle))
    # The run must have named files, or "none missing" would prove nothing.
    assert {"$.rollback.verification.log", "$.rollback.verification.bundle"} <= set(named), named
    assert "$.rollback.verification.junit" in named, named
    missing = {where: path for where, path in named.items() if not Path(path).exists()}
    assert missing == {}
