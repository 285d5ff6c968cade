"""JUnit XML evidence: per-test ``scriptum.*`` properties and the session's suite properties.

Per-test properties travel in ``item.user_properties`` (they cross the xdist channel with the
teardown report). Suite properties cannot use ``record_testsuite_property`` (it does not work
under xdist), so the process that owns the gate adds them to pytest's ``LogXML`` object itself,
from its ``pytest_sessionfinish`` (tryfirst), before junitxml writes the file.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from _pytest.junitxml import xml_key

from pytest_scriptum.evidence.redaction import Redactor
from pytest_scriptum.rollback import RollbackResult

__all__ = ["TEST_PROPERTIES", "add_suite_properties", "ensure_test_properties", "suite_properties"]

TEST_PROPERTIES = (
    "scriptum.script",
    "scriptum.version",
    "scriptum.thread_id",
    "scriptum.status",
    "scriptum.duration_ms",
)


def ensure_test_properties(item: pytest.Item, *, script: str | None, version: int | None) -> None:
    """Give a smoke test that never got a thread (a platform error, a runner-only test) its script
    and version, so every smoke test case in the XML says what it was pinned to."""
    present = {name for name, _ in item.user_properties}
    if "scriptum.script" not in present and script:
        item.user_properties.append(("scriptum.script", script))
    if "scriptum.version" not in present and version is not None:
        item.user_properties.append(("scriptum.version", version))


def suite_properties(
    *,
    verdict: str,
    candidate_version: int | None,
    rollback: RollbackResult | None,
    rollback_target: int | None,
    incident: str | None,
    verification_of: int | None,
) -> list[tuple[str, str]]:
    """The ``scriptum.*`` suite properties, all strings ("" for "none").

    A verification re-run's file says so (``scriptum.role``) and names the candidate it
    verifies a rollback from; its own rollback status is decided by the parent session.
    """
    if verification_of is not None:
        return [
            ("scriptum.role", "verification"),
            ("scriptum.verdict", verdict),
            ("scriptum.candidate_version", str(verification_of)),
            ("scriptum.verified_version", _text(candidate_version)),
            ("scriptum.rollback.to", _text(candidate_version)),
            ("scriptum.incident", _text(incident)),
        ]
    to = rollback.to_version if rollback is not None else rollback_target
    return [
        ("scriptum.role", "candidate"),
        ("scriptum.verdict", verdict),
        ("scriptum.candidate_version", _text(candidate_version)),
        # No rollback object: the gate was inconclusive, so nothing was attempted.
        ("scriptum.rollback.status", rollback.status if rollback is not None else "none"),
        ("scriptum.rollback.to", _text(to)),
        ("scriptum.incident", _text(incident)),
    ]


def add_suite_properties(
    config: pytest.Config, properties: Sequence[tuple[str, str]], redactor: Redactor
) -> bool:
    """Add the properties to this session's JUnit file; False when ``--junitxml`` is not in use."""
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return False
    for name, value in properties:
        xml.add_global_property(name, redactor.text(value))
    return True


def _text(value: object) -> str:
    return "" if value is None else str(value)
