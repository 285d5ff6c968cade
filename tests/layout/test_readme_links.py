"""Every test the README names (the fault matrix, ``[tests/x.py::test_name](...)`` links) exists.

The fault matrix tells a reader which test shows each row; a renamed or moved test must not leave
the README pointing at nothing.
"""

from __future__ import annotations

import re

from kit.constants import REPO

# `[tests/a/test_b.py::test_c](tests/a/test_b.py)`, optionally followed by `, [::test_d](...)` links.
_LINK = re.compile(r"\[(tests/[^\]:]+\.py)::(\w+)\]\(([^)]+)\)((?:, \[::\w+\]\([^)]+\))*)")


def _named_tests() -> list[tuple[str, str, str]]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = []
    for match in _LINK.finditer(readme):
        path, target = match.group(1), match.group(3)
        for name in [match.group(2), *re.findall(r"\[::(\w+)\]", match.group(4) or "")]:
            found.append((path, name, target))
    return found


def test_the_readme_names_tests_at_all() -> None:
    assert len(_named_tests()) >= 20


def test_every_test_the_readme_names_exists() -> None:
    missing = []
    for path, name, target in _named_tests():
        source = REPO / path
        if target != path or not source.is_file():
            missing.append(f"{path}::{name} (link target {target})")
        elif not re.search(rf"^def {name}\(", source.read_text(encoding="utf-8"), re.MULTILINE):
            missing.append(f"{path}::{name}")
    assert not missing, "README names tests that do not exist:\n" + "\n".join(missing)
