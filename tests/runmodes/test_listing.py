"""Listing modes (DESIGN section 3 "Run modes"): no candidate needed, no server contact, no
preflight, no gate, no evidence file, pytest's own exit code (issue 11 inputs 2 and 3)."""

from __future__ import annotations

import pytest
from kit.platform import Platform
from kit.seeds.doubles import smoke_suite

LISTING = ["--collect-only", "--fixtures", "--fixtures-per-test", "--markers", "--setup-plan", "--setup-only"]


def _total_calls(platform: Platform) -> int:
    return sum(platform.stats().calls.values())


@pytest.mark.parametrize("flag", LISTING)
def test_a_listing_mode_on_a_regression_contacts_nothing_and_writes_nothing(
    pytester: pytest.Pytester, platform: Platform, flag: str
) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(2))
    calls_before = _total_calls(platform)  # the reads of this test itself count too
    result = pytester.runpytest(*platform.args(flag, "--scriptum-evidence=ev/scriptum.json", version=2))
    assert result.ret == 0, result.stdout.str()
    assert "scriptum promotion gate" not in result.stdout.str()
    assert "verdict" not in result.stdout.str()
    assert not (pytester.path / "ev").exists()
    assert _total_calls(platform) == calls_before + 0  # no preflight, no thread, no rollback
    assert platform.active() == 2
    assert platform.rollbacks_in_history() == []


@pytest.mark.parametrize("flag", LISTING)
def test_a_listing_mode_needs_no_candidate(pytester: pytest.Pytester, platform: Platform, flag: str) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(2) + "\n\ndef test_runner(scriptum_runner):\n    pass\n")
    result = pytester.runpytest(*platform.args(flag))
    assert result.ret == 0, result.stdout.str()
    assert "no candidate version" not in result.stdout.str()
    assert _total_calls(platform) == 0


def test_fixtures_lists_the_plugins_fixtures_without_a_version(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_smoke=smoke_suite(1))
    result = pytester.runpytest("--fixtures")
    assert result.ret == 0, result.stdout.str()
    for name in ("scriptum_client", "scriptum_http", "scriptum_version", "scriptum_runner", "smoke_thread"):
        result.stdout.fnmatch_lines([f"{name}*"])


@pytest.mark.parametrize("flag", LISTING)
def test_a_listing_mode_starts_no_embedded_server(pytester: pytest.Pytester, flag: str) -> None:
    # The seed directory does not exist: starting the embedded server would be an error.
    pytester.makeini(
        "[pytest]\nscriptum_endpoint = embedded\nscriptum_seed = no-such-seed\nscriptum_script = calc\n"
        "scriptum_evidence = evidence/scriptum.json\n"
    )
    pytester.makepyfile(test_smoke=smoke_suite(3))
    result = pytester.runpytest(flag, "--scriptum-version=2")
    assert result.ret == 0, result.stdout.str()
    assert "seed directory" not in result.stdout.str() + result.stderr.str()
    assert not (pytester.path / "evidence").exists()
