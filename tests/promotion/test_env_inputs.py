"""Bad ``--scriptum-env-file`` / ``--scriptum-overlay`` inputs are usage errors naming the file (and
line, and key), never a value; the dotenv rules the README documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_scriptum._session.env_inputs import EnvInputError, read_env_file, read_overlay

SECRET = "s3cr3t-value-never-shown"


def test_dotenv_rules(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# comment\n\n  # indented comment\nexport A=1\nB = two words \nC='single # kept'\n"
        'D="double"\nE=x=y\nA=overwritten\nF=\nG=b #c\n'
    )
    env = read_env_file(path)
    assert dict(env.values) == {
        "A": "overwritten", "B": "two words", "C": "single # kept", "D": "double", "E": "x=y", "F": "",
        "G": "b #c",
    }
    assert "overwritten" not in repr(env) and "A" in repr(env)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"OK=1\n{SECRET}\n", ".env:2: expected KEY=VALUE (no '=' on the line)"),
        (f"1BAD={SECRET}\n", ".env:1: '1BAD' is not an env key"),
        (f"A='{SECRET}\n", ".env:1: the value of A opens a ' quote it never closes"),
        (f'A="{SECRET}"x"\n', ".env:1: the value of A holds its own quote character (\")"),
        (f"A={SECRET}\x01\n", ".env:1: A: the value holds a control character"),
        ("# nothing\n", "no KEY=VALUE line"),
    ],
)
def test_a_bad_env_file_names_file_and_line_never_the_value(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / ".env"
    path.write_text(text)
    with pytest.raises(EnvInputError) as info:
        read_env_file(path)
    assert problem in str(info.value) and str(path) in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("o.yaml", f"set:\n  MODEL: {SECRET}\nextra: 1\n", "unknown key 'extra' (only 'set' and 'delete')"),
        ("o.yaml", "set:\n  TEMPERATURE: 0.0\n", "set.TEMPERATURE: expected a string, got float (quote it"),
        ("o.yaml", f"- {SECRET}\n", "expected a mapping with 'set' and/or 'delete'"),
        ("o.yaml", f"set: {SECRET}\n", "'set' must be a mapping of env keys to strings"),
        ("o.yaml", "delete: MODEL\n", "'delete' must be a list of env keys"),
        ("o.yaml", "delete: [bad-key]\n", "delete: 'bad-key' is not an env key"),
        ("o.yaml", f"set:\n  MODEL: {SECRET}\ndelete: [MODEL]\n", "delete: MODEL is also in 'set'"),
        ("o.yaml", f"set: {{MODEL: '{SECRET}'\n", "not YAML (line"),
        ("o.json", f'{{"set": {{"MODEL": "{SECRET}"}}', "not JSON: line 1"),
        ("o.json", "{}", "nothing to set or delete"),
    ],
)
def test_a_bad_overlay_names_the_path_and_the_bad_key(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(EnvInputError) as info:
        read_overlay(path)
    assert problem in str(info.value) and str(path) in str(info.value)
    assert SECRET not in str(info.value)


def test_json_and_yaml_overlays(tmp_path: Path) -> None:
    (tmp_path / "o.json").write_text('{"set": {"MODEL": "gpt-4.1"}, "delete": ["LEGACY_MODEL"]}')
    (tmp_path / "o.yaml").write_text("set:\n  MODEL: gpt-4.1\ndelete:\n  - LEGACY_MODEL\n")
    for name in ("o.json", "o.yaml"):
        change = read_overlay(tmp_path / name)
        assert (dict(change.set), change.delete) == ({"MODEL": "gpt-4.1"}, ("LEGACY_MODEL",))


@pytest.mark.parametrize(
    ("option", "name", "text", "problem"),
    [
        ("--scriptum-env-file", ".env.prod", f"DB_HOST=db\n{SECRET}\n", ":2: expected KEY=VALUE"),
        ("--scriptum-overlay", "overlay.yaml", f"sets:\n  MODEL: {SECRET}\n", "unknown key 'sets'"),
    ],
)
def test_bad_inputs_are_usage_errors_before_the_platform_is_contacted(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    name: str,
    text: str,
    problem: str,
) -> None:
    monkeypatch.setenv("DODIL_TOKEN", "t" * 32)
    pytester.makepyfile(
        test_smoke="import pytest\n\n@pytest.mark.smoke_input({})\ndef test_x():\n    pass\n"
    )
    (pytester.path / name).write_text(text)
    # Port 9 (discard) on loopback: nothing answers there, and nothing is asked.
    result = pytester.runpytest_subprocess(
        "--scriptum-endpoint=127.0.0.1:9",
        "--scriptum-script=calc",
        "--scriptum-version=draft",
        f"{option}={name}",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {option}: * file {pytester.path / name}*{problem}*"])
    assert SECRET not in result.stdout.str() + result.stderr.str()
