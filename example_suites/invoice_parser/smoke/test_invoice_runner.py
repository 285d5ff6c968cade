"""Imperative checks: the pinned runner, the input contract, the overlay through the client and
the HTTP gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_scriptum.client import ScriptumError

if TYPE_CHECKING:
    import httpx

    from pytest_scriptum.client import ScriptumClient
    from pytest_scriptum.runner import PinnedRunner

pytestmark = pytest.mark.scriptum("invoice-parser")

SCRIPT = "invoice-parser"
OVERLAY = {"MODEL": "gpt-4.1", "TEMPERATURE": "0.0"}


def test_runner_pinned_and_deterministic(scriptum_runner: PinnedRunner, scriptum_version: int) -> None:
    """`scriptum_runner.run` is pinned to the candidate; the same input gives the same output."""
    invoice = {"text": "Invoice: INV-3001\nCurrency: EUR\nLine: MUG x4 31.60\nTotal: 31.60\n"}
    first = scriptum_runner.run(invoice)
    second = scriptum_runner.run(invoice)
    for result in (first, second):
        assert (result.script, result.version, result.status) == (SCRIPT, scriptum_version, "COMPLETED")
    assert first.thread_id != second.thread_id
    assert first.output == second.output
    assert first.output["total"] == 31.6


def test_runner_returns_failed_thread(scriptum_runner: PinnedRunner) -> None:
    """A handler error is a FAILED thread the test can inspect, not an exception in the test."""
    result = scriptum_runner.run({"text": "Invoice: INV-3002\nLine: MUG x0 7.90\n"})
    assert result.status == "FAILED"
    assert "quantity '0' is not a positive integer" in result.error


def test_missing_text_is_refused_by_the_input_contract(scriptum_runner: PinnedRunner) -> None:
    """Every version's contract declares `text : text` (required): the platform refuses the input
    at CreateThread (INVALID_ARGUMENT) and no thread runs, as the platform's runtime does."""
    with pytest.raises(ScriptumError) as refused:
        scriptum_runner.run({"locale": "en"})
    assert refused.value.code == "INVALID_ARGUMENT"
    assert "text" in refused.value.message


def test_overlay_holds_the_runbook_keys(scriptum_client: ScriptumClient, secret_values: list[str]) -> None:
    """The runbook's GetScriptEnv: the overlay holds MODEL/TEMPERATURE. Env reads return values,
    as the platform's do; the client's records keep them out of their repr."""
    env = scriptum_client.get_script_env(SCRIPT)
    assert dict(env.env) == OVERLAY  # configuration values, not secrets
    tenant_keys = {var.key for var in scriptum_client.list_env_vars()}
    assert {"OPENAI_API_KEY", "DB_HOST"} <= tenant_keys
    for value in secret_values:
        assert value not in repr(scriptum_client.list_env_vars())


def test_gateway_env_route_returns_the_overlay(scriptum_http: httpx.Client, secret_values: list[str]) -> None:
    """The runbook's curl of /v1/scriptum/scripts/invoice-parser/env: the overlay, as pbjson."""
    response = scriptum_http.get(f"/v1/scriptum/scripts/{SCRIPT}/env")
    assert response.status_code == 200, response.text
    assert response.json()["env"] == OVERLAY
    for value in secret_values:  # the tenant's secrets are not part of a script's overlay
        assert value not in response.text
