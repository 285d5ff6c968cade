"""Helpers of the invoice-parser smoke suite (the plugin provides the scriptum fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

SEED = Path(__file__).resolve().parent.parent / "seed"

# Keys whose values are secrets: no thread output, read or report may ever contain them.
SECRET_KEYS = ("OPENAI_API_KEY", "DB_HOST")


@pytest.fixture(scope="session")
def secret_values() -> list[str]:
    """The values of SECRET_KEYS (seeded, and in .env.prod), so tests can prove no output leaks them."""
    found: list[str] = []
    # The seeded tenant env, and the one `--scriptum-env-file=.env.prod` imports (a rotated key).
    for path in (SEED / "tenant.env", SEED.parent / ".env.prod"):
        values: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
        missing = [key for key in SECRET_KEYS if key not in values]
        assert not missing, f"{path.name} lacks {missing}"
        found += [values[key] for key in SECRET_KEYS if values[key] not in found]
    return found
