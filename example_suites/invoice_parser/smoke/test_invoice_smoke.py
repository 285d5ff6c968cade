"""Marker-declared smoke tests of invoice-parser: one pinned thread per test.

Each test's thread runs on the candidate version (``--scriptum-version``) with env resolution on,
and the plugin checks ``smoke_expect`` even when the body is only a docstring. Bodies that do
more add assertions on ``smoke_thread``. Which tests fail on the v4 regression: see ../README.md.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_scriptum.runner import ThreadResult

pytestmark = pytest.mark.scriptum("invoice-parser")

SMALL_INVOICE = {
    "text": "Invoice: INV-2001\nCurrency: EUR\nLine: WIDGET-A x2 20.00\nLine: GADGET-B x1 5.50\n"
    "Total: 25.50\n",
    "locale": "en",
}


@pytest.mark.scriptum("invoice-parser", critical=True)
@pytest.mark.smoke_input("@prod_smoke.json")
@pytest.mark.smoke_expect(
    {
        "invoice_no": "INV-2026-0514",
        "currency": "EUR",
        "total": 12480.0,
        "lines": [
            {"sku": "SRV-HOSTING", "qty": 12, "amount": 10200.0},
            {"sku": "SRV-SUPPORT", "qty": 1, "amount": 2280.0},
        ],
        "balanced": True,
    },
    approx={"/total": 0.005},
)
def test_prod_smoke(smoke_thread: ThreadResult) -> None:
    """The runbook's pinned smoke run (`thread run --input @./smoke/prod_smoke.json --env`).

    Critical: if it fails, the gate fails whatever the pass rate.
    """
    assert [(step.path, step.name) for step in smoke_thread.steps] == [
        ("1", "extract"),
        ("2", "validate"),
        ("3", "enrich"),
    ]
    assert all(step.status == "COMPLETED" for step in smoke_thread.steps)
    assert "MODEL" in smoke_thread.env_keys


@pytest.mark.smoke_input(SMALL_INVOICE)
@pytest.mark.smoke_expect({"invoice_no": "INV-2001", "total": 25.5, "lines": [{"qty": 2}, {"qty": 1}]})
def test_small_invoice_subset() -> None:
    """An inline input and a subset expectation: only the keys listed are compared."""


@pytest.mark.smoke_input(SMALL_INVOICE)
@pytest.mark.smoke_expect(
    {
        "invoice_no": "INV-2001",
        "currency": "EUR",
        "total": 25.5,
        "lines": [
            {"sku": "WIDGET-A", "qty": 2, "amount": 20.0},
            {"sku": "GADGET-B", "qty": 1, "amount": 5.5},
        ],
        "balanced": True,
        "model": "gpt-4.1",
        "db_configured": True,
    },
    match="exact",
)
def test_small_invoice_exact() -> None:
    """The whole output, key for key: a new or missing output field fails this test."""


@pytest.mark.smoke_input(SMALL_INVOICE)
@pytest.mark.smoke_expect(
    schema={
        "type": "object",
        "required": ["invoice_no", "total", "lines"],
        "properties": {
            "total": {"type": "number", "exclusiveMinimum": 0},
            "lines": {"type": "array", "minItems": 1},
        },
    }
)
def test_output_schema_inline() -> None:
    """A JSON Schema written in the test, independent of what the version declares."""


@pytest.mark.smoke_input(
    {"text": "Invoice: INV-2002\nCurrency: EUR\nLine: SERVICE-FEE x1 480.00\nTotal: 480.00\n"}
)
@pytest.mark.smoke_expect(schema="declared")
def test_output_matches_declared_schema() -> None:
    """The output validates against the version's declared output contract (the `output` block of
    its contract.scriptum, mapped to JSON Schema)."""


@pytest.mark.smoke_input(
    {"text": "Invoice: INV-2003\nLine: PEN-BLUE x3 5.97\nLine: PAD-A4 x2 7.00\nLine: CLIP x1 0.36\n"}
)
@pytest.mark.smoke_expect(
    {"total": 13.33, "lines": [{"amount": 5.97}, {"amount": 7.0}, {"amount": 0.36}]}, approx=0.001
)
def test_total_from_lines_approx() -> None:
    """Without a Total line the total is the sum of the lines; every number within 0.001."""


@pytest.mark.smoke_input({"text": "Invoice: inv-2004\nCurrency: gbp\nLine: EBOOK-PY x1 9.99\nTotal: 9.99\n"})
@pytest.mark.smoke_expect(regex={"/invoice_no": "INV-[0-9]{4}", "/currency": "[A-Z]{3}", "/lines/0/sku": r"\S+"})
def test_identifiers_normalised_regex() -> None:
    """Invoice number and currency come out upper-case whatever the text used."""


@pytest.mark.smoke_input({"text": "Invoice: INV-2006\nLine: MUG x0 7.90\n", "locale": "en"})
@pytest.mark.smoke_expect(status="FAILED")
def test_bad_quantity_fails(smoke_thread: ThreadResult) -> None:
    """Input the contract allows but the script rejects is the handler's clear ValueError (a FAILED
    thread, the script's own error), not a crash or a guess."""
    assert "ValueError" in smoke_thread.error
    assert "quantity '0' is not a positive integer" in smoke_thread.error
    assert smoke_thread.error_code == "SCRIPT_ERROR"
    # The step that raised is recorded, so a postmortem sees how far the run got.
    steps = [(step.path, step.name, step.status) for step in smoke_thread.steps]
    assert steps == [("1", "extract", "FAILED")]


@pytest.mark.smoke_input(SMALL_INVOICE)
@pytest.mark.smoke_expect({"model": "gpt-4.1", "db_configured": True})
def test_effective_env_visible_values_never_leak(
    smoke_thread: ThreadResult, secret_values: list[str]
) -> None:
    """With env resolution on, the handler sees the overlay's MODEL and the tenant's DB_HOST."""
    assert {"MODEL", "TEMPERATURE", "OPENAI_API_KEY", "DB_HOST"} <= set(smoke_thread.env_keys)
    output_text = json.dumps(smoke_thread.output)
    for value in secret_values:
        assert value not in output_text, "a secret env value leaked into the thread output"


@pytest.mark.scriptum("invoice-parser", serial=True)
@pytest.mark.smoke_input({"text": "Invoice: INV-2005\nLine: STICKER-PACK x3 12.00\nTotal: 12.00\n"})
@pytest.mark.smoke_expect({"invoice_no": "INV-2005", "currency": "EUR", "total": 12.0})
def test_serial_default_currency(smoke_thread: ThreadResult, scriptum_version: int) -> None:
    """Dispatched inline when the test runs (serial); still pinned to the candidate version."""
    assert smoke_thread.version == scriptum_version
