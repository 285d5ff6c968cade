"""The contract grammar's LALR tables are cached between server starts only where nobody else can
write (``_contract_lang._grammar_cache``): lark unpickles its cache file before checking it, so a
file another local user could plant must never be read. Each case imports the module in a fresh
interpreter with its own ``XDG_CACHE_HOME``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_PARSE = """
import sys
from pytest_scriptum.devserver import _contract_lang as c
print(c._grammar_cache())
c.parse_contract('script "s"\\ninput\\n  id : number\\n', "contract.scriptum")
"""


def _run(cache_home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    return subprocess.run([sys.executable, "-c", _PARSE], env=env, capture_output=True, text=True, timeout=60)


def test_the_cache_lives_in_a_private_per_user_directory(tmp_path: Path) -> None:
    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr
    directory = tmp_path / "pytest-scriptum"
    assert first.stdout.strip().startswith(str(directory))
    assert directory.stat().st_mode & 0o777 == 0o700
    (cache,) = directory.iterdir()
    second = _run(tmp_path)  # loads it
    assert second.returncode == 0, second.stderr
    assert [p.name for p in directory.iterdir()] == [cache.name]


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership")
def test_a_directory_others_can_write_is_never_used(tmp_path: Path) -> None:
    directory = tmp_path / "pytest-scriptum"
    directory.mkdir()
    directory.chmod(0o777)
    marker = tmp_path / "planted-ran"
    # What an attacker would plant: a pickle that runs code when loaded.
    planted = (
        b"0\n"
        b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    )
    (directory / _cache_name()).write_bytes(planted)  # lark would run it (checked by hand)
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"  # no cache at all
    assert not marker.exists()


def test_an_unreadable_cache_file_is_rebuilt(tmp_path: Path) -> None:
    assert _run(tmp_path).returncode == 0
    (cache,) = (tmp_path / "pytest-scriptum").iterdir()
    cache.write_bytes(b"not the grammar's hash\n")
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr  # parsed all the same
    assert cache.read_bytes().startswith(b"not the grammar's hash") is False  # and rewritten


def _cache_name() -> str:
    import lark

    return f"contract-grammar-lark-{lark.__version__}.pickle"
