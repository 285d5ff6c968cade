"""Root fixtures of the test suite: pytester, an outer environment that never leaks in, and the
slow tests scheduled first."""

from __future__ import annotations

# Loaded once for the whole test process, before any in-process pytester session: pytester
# unloads what an inner session imported first (its sys.modules snapshot), and the plugin loads its
# session layer, httpx, jsonschema and regex only when a session needs them (DESIGN section 6). A
# library first loaded inside an inner session would be loaded again by the next, and a module kept
# from the first copy would raise exceptions the second copy's handlers do not catch.
import httpcore  # noqa: F401
import httpx  # noqa: F401
import jsonschema  # noqa: F401
import pytest
import referencing  # noqa: F401
import regex  # noqa: F401
from kit import ENV_VARS

import pytest_scriptum._session.activation  # noqa: F401

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (whole modules of real sessions, each test several seconds) run first.

    Under ``-n 2`` with xdist's default ``--dist load`` the workers take tests in collection order,
    so slow modules late in the alphabet (shard/, startup/) ran last and one worker idled while
    the other finished them. Longest first shortens that tail. The sort is stable (a module's own
    order is kept) and the same on every worker (xdist requires the same collection everywhere);
    the tests are order-independent, as running them in any order under xdist already requires.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
