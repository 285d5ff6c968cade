"""Helpers of the invoice-parser smoke suite (the plugin provides the scriptum fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

SEED = Path(__file__).resolve().parent.parent / "seed"

# Keys whose values are secrets: no thread output, read or report may ever contain them.
SECRET_KEYS = ("OPENAI_API_KEY", "DB_HOST")


@pytest.fixture(scope="session")
def secret_values() -> list[str]:
    """The seeded values of SECRET_KEYS, so tests can prove that no output leaks them."""
    values: dict[str, str] = {}
    for line in (SEED / "tenant.env").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    missing = [key for key in SECRET_KEYS if key not in values]
    assert not missing, f"seed/tenant.env lacks {missing}"
    return [values[key] for key in SECRET_KEYS]
