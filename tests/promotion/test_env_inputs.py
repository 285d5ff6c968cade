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


@pytest.mark.parametrize("separator", ["\u2028", "\x1c", "\x85", "\x0b", "\r"])
def test_a_line_separator_inside_a_value_is_an_error_never_a_second_key(
    tmp_path: Path, separator: str
) -> None:
    # str.splitlines() would cut the value here and import "TAIL" as a tenant key of its own.
    path = tmp_path / ".env"
    path.write_text(f"TOKEN={SECRET}{separator}TAIL=x\n", newline="")
    with pytest.raises(EnvInputError) as info:
        read_env_file(path)
    assert ".env:1: TOKEN: the value holds a control character" in str(info.value)
    assert SECRET not in str(info.value)


def test_a_byte_order_mark_and_crlf_line_ends_are_read(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes("\ufeffAPI_KEY=abc\r\nB='two'\r\n".encode())
    assert dict(read_env_file(path).values) == {"API_KEY": "abc", "B": "two"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"delete:\n  - {{MODEL: {SECRET}}}\n", "delete: (a dict, not shown) is not an env key"),
        (f"delete:\n  - [{SECRET}]\n", "delete: (a list, not shown) is not an env key"),
        ("set:\n  on: x\n", "set: True (quote the key in YAML) is not an env key"),
    ],
)
def test_a_key_that_is_not_a_string_is_named_by_its_type_never_its_content(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "o.yaml"
    path.write_text(text)
    with pytest.raises(EnvInputError) as info:
        read_overlay(path)
    assert problem in str(info.value)
    assert SECRET not in str(info.value)


# A child with 512 MiB of address space: reading a hostile input must end in EnvInputError, never
# in a MemoryError (before: /dev/zero was read whole, and a 400-byte YAML alias bomb in `delete`
# was turned into a string of 10**9 items for the error message).
_BOUNDED = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (512 * 1024 * 1024, 512 * 1024 * 1024))
from pytest_scriptum._session.env_inputs import EnvInputError, read_env_file, read_overlay
reader = read_env_file if sys.argv[1] == "env" else read_overlay
try:
    reader(Path(sys.argv[2]))
except EnvInputError as exc:
    print("EnvInputError:", exc)
"""
_ALIAS_BOMB = "delete:\n  - [" + ", ".join(
    f"&a{i} [" + ",".join(['"x"'] * 10 if i == 0 else [f"*a{i - 1}"] * 10) + "]" for i in range(9)
) + "]\n"


@pytest.mark.parametrize("case", ["dev-zero", "alias-bomb"])
def test_hostile_inputs_are_refused_in_bounded_memory(tmp_path: Path, case: str) -> None:
    import subprocess
    import sys

    if case == "dev-zero":
        kind, path, expected = "env", Path("/dev/zero"), "larger than 1048576 bytes"
    else:
        kind, path = "overlay", tmp_path / "bomb.yaml"
        expected = "delete: (a list, not shown) is not an env key"
        path.write_text(_ALIAS_BOMB)
    done = subprocess.run(
        [sys.executable, "-c", _BOUNDED, kind, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout
