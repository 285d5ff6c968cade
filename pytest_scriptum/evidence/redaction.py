"""The one redactor: masks the session's bearer token and the values of secret env keys wherever
evidence is written (DESIGN section 4 "Secrets").

The platform's env reads return values (``ListEnvVars``, ``GetScriptEnv``). The plugin never writes
one, but a script may echo one back (in its output, an error, a step name), and so may a server
or a proxy echo the token. Each process keeps one ``SecretValues`` (the values of *secret* keys it
has read, and the tokens it knows) and builds its ``Redactor`` from it; every writer — bundle,
JUnit, Allure, terminal summary, failure reports, log records, pytest's ``--debug`` file —
passes its text through that redactor. Expectations compare the real values: only what is
written is masked.

A key is secret by name (``is_secret_key``: it contains KEY, TOKEN, SECRET, PASSWORD, PASSWD,
CREDENTIAL, PRIVATE or AUTH, case-insensitive) or because it was declared secret. Values shorter
than 6 characters are not masked: they would mask ordinary words, and no real secret is so short.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["MASK", "MIN_SECRET_LEN", "SECRET_KEY_PARTS", "Redactor", "SecretValues", "is_secret_key"]

MASK = "[redacted]"
MIN_SECRET_LEN = 6
# DESIGN section 4: a key whose name contains one of these (any case) holds a secret.
SECRET_KEY_PARTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE", "AUTH")


def is_secret_key(key: str, declared: Iterable[str] = ()) -> bool:
    """Whether an env ``key`` holds a secret: by its name, or because it is in ``declared``."""
    upper = key.upper()
    return any(part in upper for part in SECRET_KEY_PARTS) or key in set(declared)


class SecretValues:
    """The secret values one process has read (thread-safe; only grows).

    ``learn`` takes an env mapping and keeps the values of its secret keys; ``add`` takes values
    that are secret whatever their key (tokens). Iterating yields the values (never write them).
    """

    def __init__(self, values: Iterable[str | None] = (), *, declared: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._declared = tuple(declared)  # keys declared secret (--scriptum-secret-env)
        self.add(*values)

    def __repr__(self) -> str:  # never the values (pytest --showlocals prints reprs)
        return f"SecretValues({len(self._values)} values)"

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(sorted(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def add(self, *values: str | None) -> None:
        """Keep every value of ``MIN_SECRET_LEN`` characters or more."""
        kept = {value for value in values if value and len(value) >= MIN_SECRET_LEN}
        if kept:
            with self._lock:
                self._values |= kept

    def learn(self, env: Mapping[str, str], declared: Iterable[str] = ()) -> None:
        """Keep the values of the secret keys of ``env`` (``is_secret_key``; the keys declared here
        or at construction are secret whatever their name)."""
        declared = (*self._declared, *declared)
        self.add(*(value for key, value in env.items() if is_secret_key(key, declared)))


class Redactor:
    """Replaces every occurrence of the given secrets with ``MASK``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        unique = {s for s in secrets if s and len(s) >= MIN_SECRET_LEN}
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

    def finds(self, value: str) -> bool:
        """Whether ``value`` holds any secret (cheaper than comparing ``text(value)``)."""
        return any(secret in value for secret in self._secrets)

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
