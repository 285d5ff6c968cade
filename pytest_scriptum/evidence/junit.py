"""JUnit XML evidence: per-test ``scriptum.*`` properties and the session's suite properties.

Pure: these functions return ``(name, value)`` pairs. Per-test properties travel in
``item.user_properties`` (they cross the xdist channel with the teardown report); the gate's
owner hands the suite properties to pytest's JUnit writer (``_compat.add_junit_suite_properties``)
before junitxml writes the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pytest_scriptum.evidence.checklists import checklists

if TYPE_CHECKING:
    from pytest_scriptum.evidence.redaction import Redactor
    from pytest_scriptum.outcome import Repeats, SessionOutcome
    from pytest_scriptum.runner import ThreadResult

__all__ = [
    "TEST_PROPERTIES",
    "baseline_properties",
    "missing_test_properties",
    "repeat_properties",
    "suite_properties",
    "thread_properties",
]

TEST_PROPERTIES = (
    "scriptum.script",
    "scriptum.version",
    "scriptum.thread_id",
    "scriptum.status",
    "scriptum.duration_ms",
)


def thread_properties(result: ThreadResult) -> list[tuple[str, object]]:
    """The properties of a smoke test whose thread ran (``scriptum.error_code`` when it has one)."""
    properties: list[tuple[str, object]] = [
        ("scriptum.script", result.script),
        ("scriptum.version", result.version),
        ("scriptum.thread_id", result.thread_id),
        ("scriptum.status", result.status),
        ("scriptum.duration_ms", round(result.duration_s * 1000.0, 3)),
    ]
    if result.error_code:
        properties.append(("scriptum.error_code", result.error_code))
    return properties


def repeat_properties(repeats: Repeats) -> list[tuple[str, object]]:
    """The properties of a repeated case (DESIGN section 8 "Repeats"): attempts (N), min_pass (K),
    passed / failed / errored attempts, pass^N (1 when all N passed), the case's verdict line and
    every attempt's thread id and outcome (``index:thread_id:outcome``, comma-separated)."""
    threads = ",".join(f"{a.index}:{a.thread_id or '-'}:{a.outcome}" for a in repeats.attempts)
    return [
        ("scriptum.repeat", repeats.repeat),
        ("scriptum.repeat.min_pass", repeats.min_pass),
        ("scriptum.repeat.passed", repeats.passed),
        ("scriptum.repeat.failed", repeats.failed),
        ("scriptum.repeat.errors", repeats.errors),
        ("scriptum.repeat.pass_hat_n", repeats.pass_hat_n),
        ("scriptum.repeat.verdict", repeats.verdict),
        ("scriptum.repeat.attempts", threads),
    ]


def baseline_properties(baseline: Mapping[str, Any]) -> list[tuple[str, object]]:
    """The properties of a paired case's baseline side (``--scriptum-baseline=paired``, DESIGN
    section 8): the rollback target's version, how that side ended, and its threads (comma-separated)."""
    threads = ",".join(str(a.get("thread_id") or "-") for a in baseline.get("attempts", ()))
    return [
        ("scriptum.baseline.version", baseline.get("version")),
        ("scriptum.baseline.outcome", baseline.get("outcome")),
        ("scriptum.baseline.thread_ids", threads),
    ]


def missing_test_properties(
    present: Iterable[str], *, script: str | None, version: int | None
) -> list[tuple[str, object]]:
    """Script and version for a smoke test that never got a thread (a platform error, a runner-only
    test), so every smoke test case in the XML says what it was pinned to. ``present``: the
    property names the test already has."""
    names = set(present)
    missing: list[tuple[str, object]] = []
    if "scriptum.script" not in names and script:
        missing.append(("scriptum.script", script))
    if "scriptum.version" not in names and version is not None:
        missing.append(("scriptum.version", version))
    return missing


def suite_properties(outcome: SessionOutcome, redactor: Redactor | None = None) -> list[tuple[str, str]]:
    """The ``scriptum.*`` suite properties, all strings ("" for "none"), masked by ``redactor``.

    A verification re-run's file says so (``scriptum.role``) and names the candidate it
    verifies a rollback from; its own rollback status is decided by the parent session.
    """
    verdict = outcome.verdict.decision
    version = outcome.candidate_version
    if outcome.verification_of is not None:
        properties = [
            ("scriptum.role", "verification"),
            ("scriptum.verdict", verdict),
            ("scriptum.candidate_version", str(outcome.verification_of)),
            ("scriptum.verified_version", _text(version)),
            ("scriptum.rollback.to", _text(version)),
            ("scriptum.incident", _text(outcome.incident)),
        ]
    else:
        rollback = outcome.rollback
        target = outcome.preflight.target if outcome.preflight is not None else None
        properties = [
            ("scriptum.role", "candidate"),
            ("scriptum.verdict", verdict),
            ("scriptum.candidate_version", _text(version)),
            # No rollback object: the gate was inconclusive, so nothing was attempted.
            ("scriptum.rollback.status", rollback.status if rollback is not None else "none"),
            ("scriptum.rollback.to", _text(rollback.to_version if rollback is not None else target)),
            ("scriptum.incident", _text(outcome.incident)),
        ]
    if outcome.selection is not None:
        properties.append(("scriptum.selection", json.dumps(outcome.selection.as_dict(), sort_keys=True)))
    properties.extend(promotion_properties(outcome))
    if redactor is None:
        return properties
    return [(name, redactor.text(value)) for name, value in properties]


def promotion_properties(outcome: SessionOutcome) -> list[tuple[str, str]]:
    """DESIGN section 8's suite properties (JUnit, and Allure's ``environment.properties``): the
    publish (``scriptum.publish.*``), the env changes (``scriptum.env.*``: keys only, never values)
    and the runbook's checklists (``scriptum.checklist.*``: ``1:ok,2:ok,...`` in order); none when
    the session published nothing and changed no env."""
    properties: list[tuple[str, str]] = []
    publish, env = outcome.publish, outcome.env_changes
    if publish is not None:
        for name in ("mode", "status", "version", "previous_active", "draft_sha"):
            properties.append((f"scriptum.publish.{name}", _text(publish[name])))
    if env is not None:
        for name in ("imported", "overlay_set", "overlay_deleted", "restored", "kept"):
            properties.append((f"scriptum.env.{name}", ",".join(env[name])))
        properties.append(("scriptum.env.restore", str(env["restore"])))
    if (publish is not None or env is not None) and outcome.role == "candidate":
        for name, steps in checklists(outcome).items():
            properties.append(
                (f"scriptum.checklist.{name}", ",".join(f"{s['step']}:{s['status']}" for s in steps))
            )
    return properties


def _text(value: object) -> str:
    return "" if value is None else str(value)
