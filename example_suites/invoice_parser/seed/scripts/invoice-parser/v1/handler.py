"""invoice-parser v1: the first release; reads only the invoice number and the total.

Event:  {"text": "<invoice text>"}
Output: {"invoice_no": "INV-1001", "total": 25.5}
"""

from __future__ import annotations

import re
from typing import Any

_INVOICE = re.compile(r"^\s*Invoice:\s*(\S+)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*Total:\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*$", re.MULTILINE)


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Return the invoice number and total; raise ValueError naming what is missing."""
    if not isinstance(event, dict) or not isinstance(event.get("text"), str):
        raise ValueError("event needs a string field 'text'")
    text: str = event["text"]
    invoice = _INVOICE.search(text)
    total = _TOTAL.search(text)
    if invoice is None:
        raise ValueError("text has no 'Invoice: ...' line")
    if total is None:
        raise ValueError("text has no 'Total: ...' line")
    return {"invoice_no": invoice.group(1), "total": float(total.group(1).replace(",", ""))}
