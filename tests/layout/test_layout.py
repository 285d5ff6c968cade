"""The README's "Module map" names every module and package of ``pytest_scriptum`` (and nothing that
is gone), and the import-layer contracts of ``pyproject.toml`` hold (``lint-imports``, as CI runs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kit.constants import REPO
from kit.readme import blocks

PACKAGE = REPO / "pytest_scriptum"


def _module_map() -> str:
    (block,) = [b for b in blocks() if b.kind == "module-map"]
    return block.body.split("pytest_scriptum/\n", 1)[1].split("\ntests/", 1)[0]


def _mapped() -> set[str]:
    """Paths the map names, relative to the package: ``plugin.py``, ``_session/``, ``_session/smoke.py``."""
    names: set[str] = set()
    parent = ""
    for line in _module_map().splitlines():
        match = re.match(r"^( {2}| {4})(\S+)", line)
        if match is None:
            continue
        indent, name = match.groups()
        if len(indent) == 2:
            parent = name if name.endswith("/") else ""
            names.add(name)
        else:
            names.add(parent + name)
    return names


def _tree() -> set[str]:
    """The package's modules and subpackages, and the modules of ``_session`` and ``evidence``."""
    found = {p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    found |= {p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    for package in ("_session/", "evidence/"):
        found |= {package + p.name for p in (PACKAGE / package).glob("*.py") if p.name != "__init__.py"}
    return found


def test_the_module_map_names_every_module_and_nothing_else() -> None:
    assert _mapped() == _tree()


@pytest.mark.skipif(
    shutil.which("lint-imports", path=str(Path(sys.executable).parent)) is None,
    reason="import-linter is not installed",
)
def test_the_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None
    done = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "0 broken" in done.stdout
