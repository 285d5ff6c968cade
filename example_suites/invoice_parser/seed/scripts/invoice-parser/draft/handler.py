"""invoice-parser draft: the fix, as v5 (`--scriptum-publish` publishes it as v6).

plain-text invoice -> structured JSON (deterministic, stdlib only, no network).

Event:  {"text": "<invoice text>", "locale": "en"}        (locale optional; only "en")
Output: {"invoice_no", "currency", "total", "lines": [{"sku", "qty", "amount"}], "balanced",
         "model", "db_configured"}

Text format, one field per line; any other line (dates, notes, addresses) is ignored:

    Invoice: INV-1001
    Currency: EUR                 optional, default EUR (case-insensitive ISO code)
    Line: WIDGET-A x2 20.00       SKU, quantity, line amount ("1,234.50" separators allowed;
                                  new in v5: an optional trailing ISO code, "1,234.50EUR")
    Total: 25.50                  optional: without it the total is the sum of the lines

Steps: "extract" (read the event, parse the fields), "validate" (totals), "enrich" (effective env).
"""

from __future__ import annotations

import os
import re
from typing import Any

SUPPORTED_LOCALES = ("en",)
DEFAULT_CURRENCY = "EUR"

_INVOICE = re.compile(r"^\s*invoice\s*:\s*(?P<no>\S+)\s*$", re.IGNORECASE)
_INVOICE_NO = re.compile(r"INV-[A-Z0-9][A-Z0-9-]*")
_CURRENCY = re.compile(r"^\s*currency\s*:\s*(?P<code>\S+)\s*$", re.IGNORECASE)
_LINE = re.compile(r"^\s*line\s*:\s*(?P<sku>\S+)\s+x\s*(?P<qty>\S+)\s+(?P<amount>\S+)\s*$", re.IGNORECASE)
_TOTAL = re.compile(r"^\s*total\s*:\s*(?P<amount>\S+)\s*$", re.IGNORECASE)
# "1234.5", "1,234.50", "12,480.00EUR": en-style amounts, comma only as a thousands separator,
# optionally followed by an ISO currency code (what v4 tried with a prefix match, which read
# "1,234.50" as 1.0). The whole field must match: a partial number is never accepted.
_AMOUNT = re.compile(r"(?P<number>(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?)(?P<code>[A-Za-z]{3})?")


def _parse_amount(raw: str, where: str) -> float:
    m = _AMOUNT.fullmatch(raw)
    if m is None:
        raise ValueError(f"{where}: amount {raw!r} is not a number like 1234.50, 1,234.50 or 1,234.50EUR")
    return round(float(m["number"].replace(",", "")), 2)


def _read_event(event: Any) -> str:
    if not isinstance(event, dict) or not isinstance(event.get("text"), str):
        got = sorted(event) if isinstance(event, dict) else type(event).__name__
        raise ValueError(f"event needs a string field 'text' (got {got})")
    locale = event.get("locale", "en")
    if locale not in SUPPORTED_LOCALES:
        raise ValueError(f"event field 'locale': unsupported locale {locale!r} (supported: en)")
    text: str = event["text"]
    return text


def _extract(text: str) -> dict[str, Any]:
    invoice_no: str | None = None
    currency = DEFAULT_CURRENCY
    total: float | None = None
    lines: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"text line {number}"
        if m := _INVOICE.match(line):
            invoice_no = m["no"].upper()
            if _INVOICE_NO.fullmatch(invoice_no) is None:
                raise ValueError(f"{where}: invoice number {m['no']!r} is not like INV-1001")
        elif m := _CURRENCY.match(line):
            currency = m["code"].upper()
            if re.fullmatch(r"[A-Z]{3}", currency) is None:
                raise ValueError(f"{where}: currency {m['code']!r} is not a 3-letter ISO code")
        elif m := _LINE.match(line):
            if not m["qty"].isdigit() or int(m["qty"]) < 1:
                raise ValueError(f"{where}: quantity {m['qty']!r} is not a positive integer")
            lines.append({"sku": m["sku"], "qty": int(m["qty"]), "amount": _parse_amount(m["amount"], where)})
        elif m := _TOTAL.match(line):
            total = _parse_amount(m["amount"], where)
    if invoice_no is None:
        raise ValueError("text has no 'Invoice: INV-...' line")
    return {"invoice_no": invoice_no, "currency": currency, "total": total, "lines": lines}


def _validate(invoice: dict[str, Any]) -> None:
    lines_sum = round(sum(line["amount"] for line in invoice["lines"]), 2)
    if invoice["total"] is None:
        if not invoice["lines"]:
            raise ValueError(f"invoice {invoice['invoice_no']} has neither line items nor a Total line")
        invoice["total"] = lines_sum
    # An unbalanced invoice is reported, not rejected: a human reviews it downstream.
    invoice["balanced"] = not invoice["lines"] or abs(lines_sum - invoice["total"]) < 0.005


def _effective_env(context: Any) -> dict[str, str]:
    # The platform exposes the run's env as context.env and in os.environ (only with env on).
    env = dict(getattr(context, "env", None) or {})
    for key in ("MODEL", "DB_HOST"):
        if key not in env and key in os.environ:
            env[key] = os.environ[key]
    return env


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Parse one invoice; raise ValueError naming the problem on bad input."""
    with context.step("extract"):
        invoice = _extract(_read_event(event))
    with context.step("validate"):
        _validate(invoice)
    with context.step("enrich"):
        env = _effective_env(context)
        invoice["model"] = env.get("MODEL")
        # Only whether a database is configured: a secret's value never goes into the output.
        invoice["db_configured"] = bool(env.get("DB_HOST"))
    return invoice
