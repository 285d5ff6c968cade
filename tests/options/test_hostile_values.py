"""Issue 12 inputs 5 and 9: every user string that reaches a child process, a header or the
platform's records is validated when the options are read (printable, bounded), and the numbers
that bound a run are bounded: a clear usage error that names the option and where it came from,
before anything contacts the platform."""

from __future__ import annotations

import pytest

SMOKE = "import pytest\n\n@pytest.mark.smoke_input({'x': 1})\ndef test_one():\n    pass\n"
# The incident id: options smuggled into the verification child's argument file.
SMUGGLING = "INC-1\n--scriptum-transport\nhttp\n--scriptum-http-url\nhttp://127.0.0.1:9"


def _usage_error(result: pytest.RunResult, *fragments: str) -> str:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    err = result.stderr.str()
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_an_incident_with_newlines_is_a_usage_error_naming_its_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_smoke=SMOKE)
    monkeypatch.setenv("SCRIPTUM_INCIDENT", SMUGGLING)
    # An endpoint nothing listens on: the session must stop before it would connect anywhere.
    result = pytester.runpytest_subprocess(
        "--scriptum-endpoint=127.0.0.1:9", "--scriptum-version=2", "--scriptum-script=calc"
    )
    err = _usage_error(
        result,
        "env SCRIPTUM_INCIDENT=",
        "invalid value for --scriptum-incident / env SCRIPTUM_INCIDENT",
        "expected printable characters only",
    )
    # The rejected value is shown on one line: it cannot forge lines in the terminal or a CI log.
    assert "INC-1\\n--scriptum-transport" in err
    assert not any(line.strip() == "--scriptum-http-url" for line in err.splitlines())
    assert "scriptum promotion gate" not in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--scriptum-incident=" + "I" * 201], ["--scriptum-incident", "at most 200 characters, got 201"]),
        (["--scriptum-incident=INC\t1"], ["--scriptum-incident=INC\\t1", "printable"]),
        (["--scriptum-org=acme\r\nx-evil: 1"], ["--scriptum-org", "printable"]),
        (["--scriptum-org-name=" + "o" * 300], ["--scriptum-org-name", "at most 256 characters"]),
        (["--scriptum-http-url=http://h:1/\nx"], ["--scriptum-http-url", "printable"]),
        (["--scriptum-http-url=http://h:1/a b"], ["--scriptum-http-url", "base URL"]),
        (["--scriptum-endpoint=ho st:443"], ["--scriptum-endpoint", "host:port"]),
        (["--scriptum-evidence=out\n.json"], ["--scriptum-evidence", "printable"]),
        (["--scriptum-retries=1000000"], ["--scriptum-retries=1000000", "from 0 to 10"]),
        (["--scriptum-retries=11"], ["from 0 to 10"]),
        (["--scriptum-timeout=1e-9"], ["--scriptum-timeout=1e-9", "from 1 to 3600"]),
        (["--scriptum-timeout=0.5"], ["from 1 to 3600"]),
        (["--scriptum-timeout=nan"], ["from 1 to 3600"]),
    ],
)
def test_hostile_or_unbounded_values_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], fragments: list[str]
) -> None:
    _usage_error(pytester.runpytest("--co", *args), *fragments)


def test_the_bounds_themselves_are_accepted(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "--co",
        "-v",  # the header shows every value with its source under -v
        "--scriptum-version=3",
        "--scriptum-retries=10",
        "--scriptum-timeout=1",
        "--scriptum-incident=" + "I" * 200,
    )
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stderr.str()
    result.stdout.fnmatch_lines(
        ["scriptum:   timeout=1.0 (--scriptum-timeout)", "scriptum:   retries=10 (--scriptum-retries)"]
    )


def test_an_ini_value_spread_over_lines_is_refused_with_its_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nscriptum_org = acme\n  --scriptum-transport http\n")
    _usage_error(pytester.runpytest("--co"), "scriptum_org=acme\\n--scriptum-transport http", "printable")


@pytest.mark.parametrize("option", ["--scriptum-env-file", "--scriptum-overlay", "--scriptum-evidence"])
def test_a_path_in_a_symlink_loop_is_a_usage_error_not_an_internal_error(
    pytester: pytest.Pytester, option: str
) -> None:
    (pytester.path / "loop").symlink_to("loop")
    _usage_error(
        pytester.runpytest_subprocess("--co", f"{option}=loop"),
        f"{option}=loop: invalid value for {option}",
        "the path cannot be resolved",
    )
