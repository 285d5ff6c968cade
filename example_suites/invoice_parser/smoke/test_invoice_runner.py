"""Imperative checks: the pinned runner, the overlay through the client and the HTTP gateway."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import httpx

    from pytest_scriptum.client import ScriptumClient
    from pytest_scriptum.runner import PinnedRunner

pytestmark = pytest.mark.scriptum("invoice-parser")

SCRIPT = "invoice-parser"
OVERLAY = {"MODEL": "gpt-4.1", "TEMPERATURE": "0.0"}


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def test_runner_pinned_and_deterministic(scriptum_runner: PinnedRunner, scriptum_version: int) -> None:
    """`scriptum_runner.run` is pinned to the candidate; the same input gives the same output."""
    invoice = {"text": "Invoice: INV-3001\nCurrency: EUR\nLine: MUG x4 31.60\nTotal: 31.60\n"}
    first = scriptum_runner.run(invoice)
    second = scriptum_runner.run(invoice)
    for result in (first, second):
        assert (result.script, result.version, result.status) == (SCRIPT, scriptum_version, "SUCCEEDED")
    assert first.thread_id != second.thread_id
    assert first.output == second.output
    assert first.output["total"] == 31.6


def test_runner_returns_failed_thread(scriptum_runner: PinnedRunner) -> None:
    """A handler error is a FAILED thread the test can inspect, not an exception in the test."""
    result = scriptum_runner.run({"text": "Invoice: INV-3002\nLine: MUG x0 7.90\n"})
    assert result.status == "FAILED"
    assert "quantity '0' is not a positive integer" in result.error


def test_overlay_recorded_keys_and_fingerprints(scriptum_client: ScriptumClient) -> None:
    """The runbook's GetScriptEnv: the overlay holds MODEL/TEMPERATURE, readable only as hashes."""
    env = scriptum_client.get_script_env(SCRIPT)
    overlay = {entry.key: entry.value_sha256 for entry in env.overlay}
    assert overlay == {key: _sha256(value) for key, value in OVERLAY.items()}
    assert {"OPENAI_API_KEY", "DB_HOST", *OVERLAY} <= {entry.key for entry in env.effective}


def test_gateway_env_route_never_returns_values(
    scriptum_http: httpx.Client, secret_values: list[str]
) -> None:
    """The runbook's curl of /v1/scriptum/scripts/invoice-parser/env: keys, never values."""
    response = scriptum_http.get(f"/v1/scriptum/scripts/{SCRIPT}/env")
    assert response.status_code == 200, response.text
    assert sorted(entry["key"] for entry in response.json()["overlay"]) == sorted(OVERLAY)
    # "0.0" (TEMPERATURE) is too short to search for: it can occur inside a timestamp.
    for value in [*secret_values, OVERLAY["MODEL"]]:
        assert value not in response.text
