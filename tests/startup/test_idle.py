"""DESIGN section 6 (issue 18): a session not configured for the platform starts idle — the
plugin loads its options, marker registry and redactor, and the session layer (smoke runs, gate,
rollback, evidence) only when a test needs it (``_session.idle``). Idle, the session is exactly
pytest's own; a marker, a platform fixture or a worker's smoke report wakes it, and then it behaves
as it always did."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kit.probe import PROBE_CONFTEST, PROBE_DIR_ENV, modules_loaded

# What the session layer loads; none of it may be loaded while the plugin is idle.
SESSION_LAYER = (
    "pytest_scriptum._session.activation",
    "pytest_scriptum._session.smoke",
    "pytest_scriptum._session.gate_owner",
    "pytest_scriptum._session.records",
    "pytest_scriptum.runner",
    "pytest_scriptum.gate",
    "pytest_scriptum.outcome",
    "pytest_scriptum.rollback",
    "pytest_scriptum.preflight",
)

PLAIN = """
import pytest

def test_passes():
    assert True

def test_fails():
    assert 1 == 2

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass
"""

SMOKE = """
import pytest

@pytest.mark.smoke_input({"a": 1})
def test_smoke():
    pass

def test_plain():
    pass
"""


NO_SCRIPT = "no script to run: use @pytest.mark.scriptum('NAME') or --scriptum-script=NAME"


@pytest.fixture
def probe(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = pytester.path / "probe"
    monkeypatch.setenv(PROBE_DIR_ENV, str(directory))
    pytester.makeconftest(PROBE_CONFTEST)
    return directory


def _session_layer(modules: set[str]) -> list[str]:
    return sorted(m for m in SESSION_LAYER if m in modules)


@pytest.mark.parametrize("workers", ["0", "2"])
def test_an_idle_session_loads_no_session_layer(pytester: pytest.Pytester, probe: Path, workers: str) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", workers)
    assert result.ret == 1, result.stdout.str()
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    loaded = modules_loaded(probe)
    assert len(loaded) == (1 if workers == "0" else 3)  # every process reported
    for pid, modules in loaded.items():
        assert "pytest_scriptum.plugin" in modules, pid  # the plugin was loaded
        assert _session_layer(modules) == [], pid


def _comparable(result: pytest.RunResult) -> list[str]:
    # The plugin list of the header and the timings differ by construction; nothing else may.
    lines = [line for line in result.outlines if not line.startswith(("plugins:", "rootdir:", "configfile:"))]
    return [re.sub(r" in \d+\.\d+s", " in Xs", line) for line in lines]


def test_an_idle_session_is_exactly_a_session_without_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    with_plugin = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    without = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "-p", "no:scriptum")
    assert with_plugin.ret == without.ret == 1
    assert _comparable(with_plugin) == _comparable(without)
    assert not (pytester.path / "scriptum-evidence").exists()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_smoke_marker_wakes_it(pytester: pytest.Pytester, probe: Path, workers: str) -> None:
    # Woken, the session is what it always was: a smoke test without a script is a usage error
    # (an xdist worker fails its setup with it; the controller wakes at that report: exit 4).
    pytester.makepyfile(test_smoke=SMOKE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", workers)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert NO_SCRIPT in result.stdout.str() + result.stderr.str()
    loaded = modules_loaded(probe)
    assert any("pytest_scriptum._session.smoke" in modules for modules in loaded.values())


def test_markers_a_conftest_adds_after_collection_wake_it(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
import pytest

def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.smoke_input({"a": 1}))
"""
    )
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert NO_SCRIPT in result.stderr.str()


def test_a_platform_fixture_requested_at_run_time_wakes_it(pytester: pytest.Pytester) -> None:
    # Not visible at collection (no marker, no fixture in the signature): the fixture wakes it.
    pytester.makepyfile(
        test_late="""
def test_late(request):
    request.getfixturevalue("scriptum_version")
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*no candidate version: pass --scriptum-version=N*"])


def test_an_idle_session_still_reports_every_marker_mistake_of_a_module(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.smoke_input()
def test_one():
    pass

@pytest.mark.smoke_expect(status="DONE")
@pytest.mark.smoke_input({})
def test_two():
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()
    result.stdout.fnmatch_lines(["*2 marker mistakes in test_bad.py:*"])


def test_an_endpoint_without_a_token_does_not_fail_a_session_that_never_uses_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A SCRIPTUM_ENDPOINT exported for the whole CI job; no candidate, no token, no smoke test.
    for name in ("DODIL_TOKEN", "SCRIPTUM_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SCRIPTUM_ENDPOINT", "platform.example:443")
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    assert pytester.runpytest_subprocess("-p", "no:cacheprovider").ret == 0
    # A session with a test that uses the platform is told what is missing, as a usage error of
    # the session (exit 4), whether the test requests a fixture or declares a run (woken while its
    # module is collected: the session start waits for the end of collection).
    for name, body in (
        ("test_client", "def test_client(scriptum_client):\n    pass\n"),
        ("test_marker", "import pytest\n\n@pytest.mark.smoke_input(1)\ndef test_marker():\n    pass\n"),
    ):
        pytester.makepyfile(**{name: body})
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"{name}.py")
        assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
        assert "no bearer token for platform.example:443" in result.stderr.str()
