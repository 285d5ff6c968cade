"""The bearer token never reaches the terminal, the logs or the evidence — including the paths the
evidence suite does not take: platform errors raised from the client inside a test body shown
with --showlocals, debug logging of both transports while calls fail and are retried, and a
refused (wrong) token, which may well be a real secret for another system."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import ORG, TOKEN, Platform

from pytest_scriptum.devserver import DevServer

SUITE = """
import pytest

pytestmark = pytest.mark.scriptum("alpha")


@pytest.mark.smoke_input({"x": 1})
@pytest.mark.smoke_expect({"x2": 2})
def test_smoke():
    pass


@pytest.mark.smoke_input({"x": 2})
def test_body_hits_a_platform_error(scriptum_client):
    scriptum_client.get_script("zz-no-such-script")  # NOT_FOUND, raised from the client's frames
"""


@pytest.fixture(scope="module")
def alpha_platform(server: DevServer) -> Iterator[Platform]:
    """The suite's server, with inner sessions pinned to alpha v1 in the suite's organization."""
    platform = Platform(
        server.addresses.grpc, server.addresses.http, token=TOKEN, org=ORG, script="alpha", version=1
    )
    yield platform
    platform.close()


def _everything(result: pytest.RunResult, files: list[Path]) -> str:
    texts = [result.stdout.str(), result.stderr.str()]
    texts += [path.read_text() for path in files if path.is_file()]
    return "\n".join(texts)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_failing_calls_with_locals_and_debug_logs_never_show_the_token(
    pytester: pytest.Pytester, alpha_platform: Platform, transport: str
) -> None:
    pytester.makepyfile(test_smoke=SUITE)
    # Two injected failures: retried calls are logged at debug level by the client.
    alpha_platform.set_faults(error_next=2, methods=["CreateThread"])
    junit, bundle = pytester.path / "junit.xml", pytester.path / "bundle.json"
    try:
        result = pytester.runpytest(
            *alpha_platform.args(
                f"--scriptum-transport={transport}",
                "--showlocals",
                "--tb=long",
                "-o",
                "log_cli=true",
                "--log-cli-level=DEBUG",
                f"--junitxml={junit}",
                f"--scriptum-evidence={bundle}",
            )
        )
    finally:
        alpha_platform.set_faults()
    out = _everything(result, [junit, bundle])
    # The run really went through the paths that could leak: retries, a client traceback, locals.
    assert "on attempt 1 of 3, retrying" in out
    assert "GetScript: NOT_FOUND" in out and "zz-no-such-script" in out
    assert "timeout_s  " in out or "timeout_s = " in out  # --showlocals printed the client's frame
    assert TOKEN not in out
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1 and outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1


@pytest.mark.parametrize(
    ("transport", "variable"), [("grpc", "DODIL_TOKEN"), ("http", "DODIL_TOKEN"), ("grpc", "SCRIPTUM_TOKEN")]
)
def test_a_refused_token_is_not_printed_either(
    pytester: pytest.Pytester,
    alpha_platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
    variable: str,
) -> None:
    # Also from SCRIPTUM_TOKEN, the variable the plugin falls back to when DODIL_TOKEN is unset.
    wrong = "sk-live-0f9e8d7c6b5a-not-for-this-platform"
    monkeypatch.delenv("DODIL_TOKEN")
    monkeypatch.setenv(variable, wrong)
    pytester.makepyfile(test_smoke=SUITE)
    bundle = pytester.path / "bundle.json"
    result = pytester.runpytest(
        *alpha_platform.args(
            f"--scriptum-transport={transport}",
            "-o",
            "log_cli=true",
            "--log-cli-level=DEBUG",
            f"--scriptum-evidence={bundle}",
        )
    )
    assert result.ret == 20
    out = _everything(result, [bundle])
    assert "authentication failed" in out
    assert wrong not in out
