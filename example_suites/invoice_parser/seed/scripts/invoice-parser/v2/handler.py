"""invoice-parser v2: adds the currency and the line items to v1 (no validation, no env).

Event:  {"text": "<invoice text>"}
Output: {"invoice_no", "currency", "total", "lines": [{"sku", "qty", "amount"}]}
"""

from __future__ import annotations

import re
from typing import Any

_INVOICE = re.compile(r"^\s*Invoice:\s*(\S+)\s*$", re.MULTILINE)
_CURRENCY = re.compile(r"^\s*Currency:\s*([A-Za-z]{3})\s*$", re.MULTILINE)
_LINE = re.compile(r"^\s*Line:\s*(\S+)\s+x(\d+)\s+([0-9][0-9,]*(?:\.[0-9]+)?)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*Total:\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*$", re.MULTILINE)


def _amount(raw: str) -> float:
    return round(float(raw.replace(",", "")), 2)


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Parse the invoice; raise ValueError naming what is missing."""
    with context.step("extract"):
        if not isinstance(event, dict) or not isinstance(event.get("text"), str):
            raise ValueError("event needs a string field 'text'")
        text: str = event["text"]
        invoice = _INVOICE.search(text)
        total = _TOTAL.search(text)
        if invoice is None:
            raise ValueError("text has no 'Invoice: ...' line")
        if total is None:
            raise ValueError("text has no 'Total: ...' line")
        currency = _CURRENCY.search(text)
        lines = [
            {"sku": sku, "qty": int(qty), "amount": _amount(amount)}
            for sku, qty, amount in _LINE.findall(text)
        ]
    return {
        "invoice_no": invoice.group(1),
        "currency": currency.group(1).upper() if currency else "EUR",
        "total": _amount(total.group(1)),
        "lines": lines,
    }
