"""Scrubbing known secrets (the session's bearer token) out of evidence before it is written.

The platform's env reads return values, but the plugin keeps none of them: preflight reduces them
to keys and fingerprints on the spot. So the one secret the plugin holds is the token. Each
process builds one ``Redactor`` from every token it knows (``_session.resources``) and every
evidence writer (bundle, JUnit, Allure, terminal summary) passes its text through that one, so a
token echoed back in an error message by a server or a proxy can never reach a file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["MASK", "Redactor"]

MASK = "[redacted]"
# Shorter strings would mask ordinary words; no real token is this short.
_MIN_SECRET_LEN = 8


class Redactor:
    """Replaces every occurrence of the given secrets with ``MASK``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        unique = {s for s in secrets if s and len(s) >= _MIN_SECRET_LEN}
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = tuple(sorted(unique, key=len, reverse=True))

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def text(self, value: str) -> str:
        """``value`` with every secret masked."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def data(self, value: Any) -> Any:
        """A copy of a JSON-like value (dicts, lists, strings, scalars) with secrets masked."""
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.data(k): self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value
