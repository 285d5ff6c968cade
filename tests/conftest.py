"""Root fixtures of the test suite: pytester, and an outer environment that never leaks in."""

from __future__ import annotations

import pytest
from kit import ENV_VARS

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _clear_scriptum_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every variable the plugin reads, so inner sessions see only what a test sets.

    Function-scoped autouse fixtures of this root conftest run before those of the suite
    conftests and before any fixture a test requests, so a test or fixture that needs e.g.
    ``DODIL_TOKEN`` still sets it itself.
    """
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
