"""Options: CLI > env > ini > default, paths relative as documented, UsageErrors that name the option."""

from __future__ import annotations

import pytest


def header(result: pytest.RunResult) -> str:
    """The header's lines, joined (the runs pass -v: every value with its source, one a line)."""
    lines = [ln for ln in result.outlines if ln.startswith("scriptum: ")]
    assert lines, result.stdout.str()
    return ", ".join(ln.removeprefix("scriptum: ").strip() for ln in lines)


def test_cli_beats_env_beats_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini(
        "[pytest]\nscriptum_version = 3\nscriptum_script = from-ini\nscriptum_org = ini-org\n"
        "scriptum_endpoint = ini.example:443\n"
    )
    monkeypatch.setenv("SCRIPTUM_VERSION", "4")
    monkeypatch.setenv("SCRIPTUM_SCRIPT", "from-env")
    result = pytester.runpytest("--co", "-v", "--scriptum-version=5")
    line = header(result)
    assert "version=5 (--scriptum-version)" in line
    assert "script=from-env (env SCRIPTUM_SCRIPT)" in line
    assert "org=ini-org (tox.ini scriptum_org)" in line or "org=ini-org (pytest.ini scriptum_org)" in line
    assert "endpoint=ini.example:443" in line
    assert "transport=grpc (default)" in line


def test_env_beats_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nscriptum_version = 3\n")
    monkeypatch.setenv("SCRIPTUM_VERSION", "4")
    assert "version=4 (env SCRIPTUM_VERSION)" in header(pytester.runpytest("--co", "-v"))


def test_ini_beats_default(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nscriptum_version = 3\nscriptum_concurrency = 3\n")
    line = header(pytester.runpytest("--co", "-v"))
    assert "version=3 (" in line and "scriptum_version)" in line
    assert "concurrency=3 (" in line


def test_paths_are_relative_to_ini_dir_or_cwd(pytester: pytest.Pytester) -> None:
    pytester.mkdir("sub")
    pytester.makeini("[pytest]\nscriptum_version = 3\nscriptum_evidence = out/bundle.json\n")
    line = header(pytester.runpytest("--co", "-v"))
    assert f"evidence={pytester.path / 'out' / 'bundle.json'}" in line
    # On the command line a path is relative to the invocation directory.
    sub = pytester.path / "sub"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        line = header(
            pytester.runpytest(
                "--co",
                "-v",
                "--scriptum-evidence=e.json",
                "--rootdir",
                str(pytester.path),
                "-c",
                str(pytester.path / "tox.ini"),
            )
        )
    assert f"evidence={sub / 'e.json'} (--scriptum-evidence)" in line


def test_token_is_never_in_the_header(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DODIL_TOKEN", "tok-SECRET-123")
    result = pytester.runpytest("--co", "-v", "--scriptum-version=2")
    assert "token=$DODIL_TOKEN (set)" in header(result)
    assert "tok-SECRET-123" not in result.stdout.str() + result.stderr.str()


def test_token_env_name_comes_from_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nscriptum_token_env = MY_TOKEN\n")
    monkeypatch.setenv("MY_TOKEN", "x")
    assert "token=$MY_TOKEN (set)" in header(pytester.runpytest("--co", "-v", "--scriptum-version=2"))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--scriptum-version=abc"], "--scriptum-version=abc: invalid value for --scriptum-version"),
        (["--scriptum-version=0"], "expected an integer >= 1"),
        (["--scriptum-min-pass-rate=1.5"], "expected a number from 0 to 1"),
        (["--scriptum-rollback=maybe"], "accepted values: auto, off, dry-run"),
        (["--scriptum-transport=smtp"], "accepted values: grpc, http"),
        (["--scriptum-endpoint=nohost"], "expected 'embedded' or a gRPC target 'host:port'"),
        (["--scriptum-http-url=ftp://x"], "expected an http:// or https:// base URL"),
        (["--scriptum-timeout=-1"], "expected a number of seconds from 1 to 3600"),
        (["--scriptum-require-env=OK,not ok"], "not a key: not ok"),
        (["--scriptum-script=Invoice Parser"], "expected a script name"),
        (["--scriptum-concurrency=0"], "--scriptum-concurrency=0: invalid value"),
    ],
)
def test_bad_cli_values_are_usage_errors(pytester: pytest.Pytester, args: list[str], expected: str) -> None:
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{expected}*"])


def test_bad_ini_value_names_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nscriptum_max_errors = lots\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*scriptum_max_errors=lots: invalid value for --scriptum-max-errors*"])


def test_bad_env_value_names_the_env_var(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIPTUM_VERSION", "four")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*env SCRIPTUM_VERSION=four: invalid value*expected an integer >= 1*"])


def test_help_lists_every_option(pytester: pytest.Pytester) -> None:
    from pytest_scriptum._options import OPTIONS

    result = pytester.runpytest("--help")
    out = result.stdout.str()
    for spec in OPTIONS:
        if spec.cli and spec.help:
            assert spec.cli in out, spec.cli
        if spec.ini:
            assert spec.ini in out, spec.ini
    assert "--scriptum-verification-of" not in out  # internal


def test_smoke_tests_without_version_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.smoke_input({"a": 1})
        def test_x():
            pass
    """)
    result = pytester.runpytest("--scriptum-script=x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*1 smoke tests selected but no candidate version: pass --scriptum-version=N*"]
    )


def test_plain_tests_need_no_scriptum_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    assert "scriptum:" not in result.stdout.str()


def test_help_despite_a_bad_env_value(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIPTUM_VERSION", "four")
    result = pytester.runpytest("--help")
    assert result.ret == 0
    assert "--scriptum-version" in result.stdout.str()


def test_org_name_from_cli_env_and_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nscriptum_org_name = ini-org-name\n")
    assert "org_name=ini-org-name (" in header(pytester.runpytest("--co", "-v", "--scriptum-version=2"))
    monkeypatch.setenv("SCRIPTUM_ORG_NAME", "env-org-name")
    line = header(pytester.runpytest("--co", "-v", "--scriptum-version=2"))
    assert "org_name=env-org-name (env SCRIPTUM_ORG_NAME)" in line
    line = header(
        pytester.runpytest("--co", "-v", "--scriptum-version=2", "--scriptum-org-name=cli-org-name")
    )
    assert "org_name=cli-org-name (--scriptum-org-name)" in line


def test_endpoint_env_falls_back_to_the_platform_cli_name(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRIPTUM_API_ENDPOINT", "rpc.dev.dodil.io:443")
    line = header(pytester.runpytest("--co", "-v", "--scriptum-version=2"))
    assert "endpoint=rpc.dev.dodil.io:443 (env SCRIPTUM_API_ENDPOINT)" in line
    monkeypatch.setenv("SCRIPTUM_ENDPOINT", "primary.example:443")  # the plugin's own name wins
    line = header(pytester.runpytest("--co", "-v", "--scriptum-version=2"))
    assert "endpoint=primary.example:443 (env SCRIPTUM_ENDPOINT)" in line


def test_bad_fallback_env_value_names_that_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRIPTUM_API_ENDPOINT", "no-port")
    result = pytester.runpytest("--co", "-v")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*env SCRIPTUM_API_ENDPOINT=no-port: invalid value for --scriptum-endpoint*"]
    )


@pytest.mark.parametrize(
    ("env", "ini", "shown"),
    [
        ({"SCRIPTUM_TOKEN": "tok-b-123456"}, "", "token=$SCRIPTUM_TOKEN (set)"),
        ({"DODIL_TOKEN": "tok-a-123456", "SCRIPTUM_TOKEN": "tok-b-123456"}, "", "token=$DODIL_TOKEN (set)"),
        ({}, "", "token=$DODIL_TOKEN (not set)"),
        # a configured variable is the only place looked at
        ({"SCRIPTUM_TOKEN": "tok-b-123456"}, "scriptum_token_env = MY_TOKEN\n", "token=$MY_TOKEN (not set)"),
    ],
)
def test_token_comes_from_dodil_token_then_scriptum_token(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], ini: str, shown: str
) -> None:
    pytester.makeini("[pytest]\n" + ini)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = pytester.runpytest("--co", "-v", "--scriptum-version=2")
    assert shown in header(result)
    for value in env.values():
        assert value not in result.stdout.str() + result.stderr.str()


def test_the_header_is_one_short_line_and_every_value_with_its_source_under_v(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DESIGN section 2: version, script, endpoint and rollback mode by default; every effective
    value with its source under -v; no "token not set" for the embedded server (it makes one)."""
    monkeypatch.delenv("DODIL_TOKEN", raising=False)
    monkeypatch.delenv("SCRIPTUM_TOKEN", raising=False)
    pytester.makeini("[pytest]\nscriptum_endpoint = embedded\nscriptum_script = calc\n")
    result = pytester.runpytest("--co", "--scriptum-version=4")
    short = [ln for ln in result.outlines if ln.startswith("scriptum:")]
    assert short == ["scriptum: version=4, script=calc, endpoint=embedded, rollback=auto"]
    verbose = pytester.runpytest("--co", "-v", "--scriptum-version=4", "--scriptum-retries=3").outlines
    lines = [ln for ln in verbose if ln.startswith("scriptum:")]
    assert lines[0] == short[0]
    assert "scriptum:   version=4 (--scriptum-version)" in lines
    assert "scriptum:   retries=3 (--scriptum-retries)" in lines
    assert "scriptum:   timeout=60.0 (default)" in lines
    endpoint = [ln for ln in lines if ln.startswith("scriptum:   endpoint=embedded (")]
    assert len(endpoint) == 1 and endpoint[0].endswith("scriptum_endpoint)")
    assert lines[-1] == "scriptum:   token=per-session (embedded server)"
    assert not [ln for ln in lines if "not set" in ln]
    assert max(len(ln) for ln in short) < 120
    remote = pytester.runpytest("--co", "--scriptum-version=4", "--scriptum-endpoint=rpc.example:443")
    shown = "version=4, script=calc, endpoint=rpc.example:443, rollback=auto, token=$DODIL_TOKEN (not set)"
    assert f"scriptum: {shown}" in remote.outlines


def test_ini_keys_are_typed_where_pytest_offers_a_type(pytester: pytest.Pytester) -> None:
    help_text = pytester.runpytest("--help").stdout.str()
    assert "scriptum_fail_fast (bool):" in help_text and "scriptum_insecure (bool):" in help_text
    assert "scriptum_evidence (paths):" in help_text and "scriptum_seed (paths):" in help_text
    # Numbers stay text: the row's parser names the option and its bounds when a value is bad.
    assert "scriptum_timeout (string):" in help_text
    pytester.makeini("[pytest]\nscriptum_version = 3\nscriptum_fail_fast = yes\n")
    assert "fail_fast=True (" in header(pytester.runpytest("--co", "-v"))
    pytester.makeini('[pytest]\nscriptum_version = 3\nscriptum_evidence = "a b/x.json" c.json\n')
    result = pytester.runpytest("--co")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "scriptum_evidence: one path expected, got 2" in result.stderr.str()
