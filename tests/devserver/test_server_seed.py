"""Seed directory parsing (pure logic) and its errors naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from kit.seeds import DEVSERVER_SEED as SEED

from pytest_scriptum.devserver import SeedError
from pytest_scriptum.devserver._seed import load_seed


def _script(
    root: Path, name: str = "demo", versions: tuple[int, ...] = (1, 2), yaml: str | None = None
) -> Path:
    script = root / "scripts" / name
    for number in versions:
        (script / f"v{number}").mkdir(parents=True)
        (script / f"v{number}" / "handler.py").write_text(f"def handler(e, c):\n    return {number}\n")
    if yaml is not None:
        (script / "script.yaml").write_text(yaml)
    return script


def test_fixture_seed_is_read_completely() -> None:
    seed = load_seed(SEED)
    assert seed.tenant_env == {
        "DB_HOST": "db.test.invalid",
        "OPENAI_API_KEY": "sk-fake-devserver-test",
        "LOG_LEVEL": "info",
    }
    echo = {script.name: script for script in seed.scripts}["echo"]
    assert [v.number for v in echo.versions] == [1, 2, 3, 4, 5] and echo.active == 4
    assert echo.overlay == {"MODEL": "gpt-4.1", "LEGACY_MODEL": "gpt-3"} and echo.draft is not None
    v2 = echo.versions[1].program
    assert [f.name for f in v2.contract.inputs] == ["text", "count"] and 'script "echo"' in v2.contract_text
    assert echo.versions[0].program.contract_text == "" and not echo.versions[0].program.contract.inputs
    tools = {script.name: script for script in seed.scripts}["tools"]
    assert tools.overlay == {"MODEL": "tools-model", "TEMPERATURE": "0.0"}


def test_without_active_the_highest_version_is_active(tmp_path: Path) -> None:
    _script(tmp_path, versions=(1, 2, 3))
    (script,) = load_seed(tmp_path).scripts
    assert [v.number for v in script.versions] == [1, 2, 3] and script.active == 3


@pytest.mark.parametrize(
    ("arrange", "needle"),
    [
        (lambda root: (_script(root) / "latest").mkdir(), "latest: a script directory holds only vN/"),
        (lambda root: _script(root, yaml="active: [1"), "script.yaml: invalid YAML"),
        (lambda root: _script(root, yaml="active: 9\n"), "'active: 9' names no version directory"),
        (lambda root: _script(root, yaml="colour: red\n"), "script.yaml: unknown key(s) colour"),
        (lambda root: (_script(root) / "v3").mkdir(), "v3/handler.py: missing"),
        (
            lambda root: (root / "tenant.env").write_text("GOOD=1\nnot a pair\n"),
            "tenant.env:2: expected KEY=VALUE",
        ),
        (lambda root: _script(root, name="Bad_Name"), "invalid script name 'Bad_Name'"),
        (lambda root: _script(root, versions=(1, 2, 7)), "v3 is missing"),
        (
            lambda root: (_script(root) / "v1" / "info.yaml").write_text("input: {}\n"),
            "info.yaml is no longer supported",
        ),
        (
            lambda root: (_script(root) / "v2" / "contract.scriptum").write_text(
                'script "demo"\ninput\n  x : txet\n'
            ),
            "v2/contract.scriptum:3:",
        ),
        (
            lambda root: (root / "tenant.env").write_text("SECRET sk-live-123\n"),
            "tenant.env:1: expected KEY=VALUE",
        ),
    ],
)
def test_bad_seeds_name_the_file(tmp_path: Path, arrange: object, needle: str) -> None:
    arrange(tmp_path)  # type: ignore[operator]
    with pytest.raises(SeedError) as exc:
        load_seed(tmp_path)
    assert needle in str(exc.value)


def test_missing_seed_directory(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="does not exist"):
        load_seed(tmp_path / "nope")


def test_a_bad_env_line_is_not_echoed(tmp_path: Path) -> None:
    (tmp_path / "tenant.env").write_text("OPENAI_API_KEY sk-live-0123456789\n")
    with pytest.raises(SeedError) as exc:
        load_seed(tmp_path)
    assert "sk-live" not in str(exc.value)


@pytest.mark.parametrize("separator", ["\u2028", "\x85", "\x1e", "\x0c", "\r"])
def test_a_line_separator_inside_a_value_never_makes_a_key(separator: str) -> None:
    # The sibling of the plugin's env-file rule: str.splitlines would cut the value there and
    # store its tail ("INJECTED=1") as a tenant key of its own.
    from pytest_scriptum.devserver._seed import parse_dotenv

    values = parse_dotenv(f"A=x{separator}INJECTED=1\r\nB=2\n", "tenant.env")
    assert values == {"A": f"x{separator}INJECTED=1", "B": "2"}
