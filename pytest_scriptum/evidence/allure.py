"""Allure evidence: per smoke test attachments, steps, labels and links; per session the gate and
rollback results, ``environment.properties`` and ``executor.json``.

Only used when allure-pytest is active (``--alluredir``); ``allure`` is imported lazily, so the
plugin works without it. Per-test evidence goes through allure-pytest's public API
(``allure.dynamic``, ``allure.attach``) in the process that ran the test (each xdist worker, the
verification child); the thread's steps, which need allure-pytest's internals, are returned as
data for ``_compat.add_allure_steps``. Session results are written as Allure result files from the
session's outcome by the process that owns the gate, at session finish: after allure-pytest
cleaned the directory (``--clean-alluredir`` acts at configure) and after the verification
child wrote its own results into the same directory.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_scriptum._compat import AllureStep
from pytest_scriptum.evidence._files import write_atomic
from pytest_scriptum.evidence.checklists import checklists
from pytest_scriptum.evidence.junit import promotion_properties
from pytest_scriptum.spec import UNSET

if TYPE_CHECKING:
    from pytest_scriptum import expect
    from pytest_scriptum.evidence.redaction import Redactor
    from pytest_scriptum.outcome import Repeats, SessionOutcome
    from pytest_scriptum.rollback import RollbackResult
    from pytest_scriptum.runner import ThreadResult
    from pytest_scriptum.spec import Expectation

__all__ = [
    "ROLLBACK_RESULT_STATUS",
    "attempt_steps",
    "expectation_data",
    "promotion_label",
    "record_smoke_test",
    "run_label",
    "smoke_title",
    "thread_steps",
    "write_session_results",
]

_LOG_TAIL = 256 * 1024  # bytes of the verification log attached to the rollback result

# Rollback status -> Allure status of the "scriptum rollback" result: passed only when the
# script ended on a verified version; a deliberate no-op is skipped; a human must act otherwise.
ROLLBACK_RESULT_STATUS: dict[str, str] = {
    "rolled_back_verified": "passed",
    "not_needed": "skipped",
    "disabled": "skipped",
    "dry_run": "skipped",
    "candidate_not_active": "skipped",
    "rolled_back_unverified": "failed",
    "no_target": "broken",
    "rollback_failed": "broken",
    "conflict": "broken",
    "vetoed": "skipped",
    "already_rolled_back": "passed",  # "failed" when its verification did not pass (below)
    "interrupted": "broken",
}
_GATE_STATUS = {"pass": "passed", "fail": "failed", "inconclusive": "broken"}
# The platform's step status -> Allure's (a step still running when the thread settled is unknown).
_STEP_STATUS = {"COMPLETED": "passed", "FAILED": "failed", "PAUSED": "skipped", "CANCELLED": "skipped"}


def run_label(script: str | None, version: int | None, verification_of: int | None) -> str:
    """The top node of a smoke run in Allure 3's default tree (its ``titlePath``) and its
    ``parentSuite``: ``"calc v4 (candidate)"``, or ``"calc v3 (verification of v4)"`` for the
    re-run after rolling back from v4 (DESIGN section 4: the two runs apart, the version shown)."""
    what = f"verification of v{verification_of}" if verification_of is not None else "candidate"
    return f"{script or 'script'} v{version} ({what})"


def promotion_label(script: str | None, version: int | None) -> str:
    """The top node of the session's own results (gate, rollback), apart from the smoke runs."""
    return f"{script or 'script'} v{version} (promotion gate)"


def smoke_title(name: str, version: int | None, verification_of: int | None) -> str:
    """A smoke test's Allure name: its pytest name and the version it ran on."""
    return f"{name} · v{version}" + (" verification" if verification_of is not None else "")


def _plain(value: Any) -> Any:
    """JSON-able form of expectation parts (compiled regexes, the MISSING sentinel, tuples)."""
    # Imported here (it loads jsonschema): only smoke tests' evidence needs it (DESIGN section 6).
    from pytest_scriptum import expect

    if value is expect.MISSING:
        return "<missing>"
    if hasattr(value, "pattern") and hasattr(value, "fullmatch"):
        return value.pattern
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def expectation_data(expectation: Expectation) -> dict[str, Any]:
    """The declared expectation as JSON-able data (what the "expected" attachment shows)."""
    data: dict[str, Any] = {"status": expectation.status, "match": expectation.match}
    if expectation.output is not UNSET:
        data["output"] = _plain(expectation.output)
    for name in ("schema", "approx", "regex"):
        value = getattr(expectation, name)
        if value is not None:
            data[name] = _plain(value)
    return data


def _json(value: Any, redactor: Redactor) -> str:
    return redactor.text(json.dumps(_plain(value), indent=2, ensure_ascii=False, default=repr))


def _allure() -> Any:
    return importlib.import_module("allure")


def thread_steps(result: ThreadResult, redactor: Redactor, *, test_start_ms: int | None) -> list[AllureStep]:
    """The thread's steps as Allure steps named by their path, at their real times.

    Steps carry the platform's start and finish times (ms since the epoch). A step without them
    is placed so that the thread ends when the test's Allure timeline starts (``test_start_ms``;
    now when unknown): the run finished before the test body ran. Nested steps ("1.0" inside
    "1") are listed in path order, flat: the path in each name shows the nesting.
    """
    if result.finished_at is not None:
        fallback_end = round(result.finished_at * 1000)
    else:
        fallback_end = test_start_ms or int(time.time() * 1000)
    steps = []
    for step in result.steps:
        stop = step.finished_at_ms or fallback_end
        begin = step.started_at_ms or stop - round(step.duration_ms)
        steps.append(
            AllureStep(
                name=redactor.text(f"step {step.path} {step.name}"),
                status=_STEP_STATUS.get(step.status, "broken"),
                start_ms=begin,
                stop_ms=max(stop, begin),
                message=redactor.text(step.error) if step.error else None,
            )
        )
    return steps


_ATTEMPT_STATUS = {"passed": "passed", "failed": "failed", "error": "broken"}


def attempt_steps(repeats: Repeats, redactor: Redactor, *, at_ms: int | None) -> list[AllureStep]:
    """A repeated case's attempts as Allure steps of its one test (DESIGN section 8 "Repeats"):
    ``attempt i of N: thread T STATUS``, passed / failed / broken (the platform errored), with the
    failure as the message, then one step with the case's verdict line and pass^N. The attempts
    were judged together in the call phase, so every step sits at ``at_ms`` (now when None)."""
    at = at_ms if at_ms is not None else int(time.time() * 1000)
    total = repeats.repeat
    steps = [
        AllureStep(
            name=redactor.text(f"attempt {a.index} of {total}: thread {a.thread_id or '-'} {a.status or ''}"),
            status=_ATTEMPT_STATUS[a.outcome],
            start_ms=at,
            stop_ms=at,
            message=redactor.text(a.error) if a.error else None,
        )
        for a in repeats.attempts
    ]
    verdict = f"repeat: {repeats.verdict} (min_pass {repeats.min_pass}, pass^{total} = {repeats.pass_hat_n})"
    failed = repeats.passed < repeats.min_pass
    steps.append(AllureStep(redactor.text(verdict), "failed" if failed else "passed", at, at))
    return steps


def record_smoke_test(
    *,
    name: str | None = None,
    script: str | None,
    version: int | None,
    verification_of: int | None,
    incident: str | None,
    expectation: Expectation | None,
    smoke_input: Any,
    result: ThreadResult | None,
    mismatches: Sequence[expect.Mismatch],
    redactor: Redactor,
) -> None:
    """Labels, link and attachments of the running smoke test (call from its reports); ``name``
    (the pytest name) becomes the title with the version. The caller puts ``run_label`` in front
    of the test's ``titlePath`` (``_compat.prefix_allure_title_path``)."""
    allure = _allure()
    json_type, text_type = allure.attachment_type.JSON, allure.attachment_type.TEXT
    dynamic = allure.dynamic
    if script:
        dynamic.label("scriptum.script", script)
    if version is not None:
        dynamic.label("scriptum.version", str(version))
        # A parameter is part of Allure's history id: the candidate run and the verification
        # re-run of one test are two results, not a retry that hides the first.
        dynamic.parameter("scriptum version", version)
    dynamic.parent_suite(run_label(script, version, verification_of))
    if name:
        dynamic.title(smoke_title(name, version, verification_of))
    dynamic.tag("scriptum-verification" if verification_of is not None else "scriptum-candidate")
    if incident:
        dynamic.issue(incident, name=f"incident {incident}")
    if expectation is not None:
        allure.attach(_json(smoke_input, redactor), name="input", attachment_type=json_type)
        expected = _json(expectation_data(expectation), redactor)
        allure.attach(expected, name="expected", attachment_type=json_type)
    if result is None:
        return
    allure.attach(_json(result.output, redactor), name="output", attachment_type=json_type)
    thread = {
        "thread_id": result.thread_id,
        "script": result.script,
        "version": result.version,
        "status": result.status,
        "error": result.error,
        "error_code": result.error_code,
        "duration_s": result.duration_s,
        "env_keys": list(result.env_keys),
        "request_id": result.request_id,
        "steps": [
            {"path": s.path, "name": s.name, "status": s.status, "started_at_ms": s.started_at_ms,
             "finished_at_ms": s.finished_at_ms, "duration_ms": s.duration_ms, "error": s.error}
            for s in result.steps
        ],
    }
    allure.attach(_json(thread, redactor), name="thread", attachment_type=json_type)
    if mismatches:
        found = [
            {"path": m.path, "message": m.message, "expected": m.expected, "actual": m.actual}
            for m in mismatches
        ]
        allure.attach(_json(found, redactor), name="mismatches", attachment_type=json_type)
        compared = expectation is not None and expectation.output is not UNSET
        if expectation is not None and compared and result.status == expectation.status:
            from pytest_scriptum import expect  # see _plain

            diff = expect.json_diff(expectation.output, result.output, subset=expectation.match == "subset")
            if diff:
                allure.attach(redactor.text(diff), name="diff", attachment_type=text_type)


# -- session results (the process that owns the gate) ------------------------------------------


def _ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


class _ResultWriter:
    """Writes Allure result files (the ``*-result.json`` format allure-pytest writes)."""

    def __init__(self, directory: Path, redactor: Redactor, link_patterns: Mapping[str, str]) -> None:
        self.directory = directory
        self.redactor = redactor
        self.link_patterns = link_patterns

    def attachment(self, name: str, body: str, *, mime: str, ext: str) -> dict[str, str]:
        source = f"{uuid.uuid4()}-attachment.{ext}"
        write_atomic(self.directory / source, self.redactor.text(body))
        return {"name": name, "source": source, "type": mime}

    def json_attachment(self, name: str, value: Any) -> dict[str, str]:
        return self.attachment(name, _json(value, self.redactor), mime="application/json", ext="json")

    def issue_link(self, incident: str) -> dict[str, str]:
        url = self.link_patterns.get("issue", "{}").format(incident)
        return {"type": "issue", "url": url, "name": f"incident {incident}"}

    def result(self, data: dict[str, Any]) -> Path:
        key = str(uuid.uuid4())
        full_name = str(data["fullName"])
        labels = {label["name"]: label["value"] for label in data.get("labels", [])}
        body = {
            "uuid": key,
            # Allure 3's default tree is built from titlePath: the promotion node, then gate / rollback.
            "titlePath": [labels.get("parentSuite", "scriptum"), labels.get("suite", "")],
            "historyId": hashlib.md5(full_name.encode("utf-8")).hexdigest(),
            "testCaseId": hashlib.md5(full_name.encode("utf-8")).hexdigest(),
            "stage": "finished",
            **data,
        }
        path = self.directory / f"{key}-result.json"
        write_atomic(path, self.redactor.text(json.dumps(body, indent=2, ensure_ascii=False)))
        return path


def _labels(outcome: SessionOutcome, suite: str) -> list[dict[str, str]]:
    labels = [
        {"name": "parentSuite", "value": promotion_label(outcome.script, outcome.candidate_version)},
        {"name": "suite", "value": suite},
        {"name": "tag", "value": "scriptum-promotion"},
        {"name": "framework", "value": "pytest-scriptum"},
    ]
    if outcome.script:
        labels.append({"name": "scriptum.script", "value": outcome.script})
    if outcome.candidate_version is not None:
        labels.append({"name": "scriptum.version", "value": str(outcome.candidate_version)})
    return labels


def _step(name: str, status: str, start: int, stop: int, message: str | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {"name": name, "status": status, "stage": "finished", "start": start, "stop": stop}
    if message:
        step["statusDetails"] = {"message": message}
    return step


def _gate_result(writer: _ResultWriter, outcome: SessionOutcome, start: int, stop: int) -> Path:
    verdict = outcome.verdict
    steps = []
    if outcome.preflight is not None:
        for item in sorted(outcome.preflight.items, key=lambda i: i.name):
            steps.append(_step(f"preflight {item.name}", "passed" if item.ok else "failed", start, start,
                               None if item.ok else item.detail))
    counts = verdict.counts
    steps.append(
        _step(
            f"4. pinned smoke gate: {counts.passed} passed, {counts.failed} failed, {counts.errors} errors, "
            f"{counts.skipped} skipped",
            _GATE_STATUS[verdict.decision],
            start,
            stop,
            verdict.reason,
        )
    )
    gate = {
        "verdict": verdict.decision,
        "reason": verdict.reason,
        "min_pass_rate": verdict.config.min_pass_rate,
        "min_tests": verdict.config.min_tests,
        "max_errors": verdict.config.max_errors,
        "passed": counts.passed,
        "failed": counts.failed,
        "errors": counts.errors,
        "skipped": counts.skipped,
        "critical_failed": list(counts.critical_failed),
        "exit_code": outcome.exit_code,
        "endpoint": outcome.endpoint,
    }
    attachments = [writer.json_attachment("gate", gate)]
    if outcome.preflight is not None:
        attachments.append(writer.json_attachment("preflight", outcome.preflight.as_dict()))
    if outcome.publish is not None or outcome.env_changes is not None:
        # DESIGN section 8: the publish, the env changes (keys and fingerprints) and the checklists.
        promotion = {
            "publish": outcome.publish, "env_changes": outcome.env_changes, "checklists": checklists(outcome)
        }
        attachments.append(writer.json_attachment("promotion", promotion))
    return writer.result(
        {
            "name": f"scriptum gate {outcome.script} v{outcome.candidate_version}: {verdict.decision}",
            "fullName": f"scriptum.gate.{outcome.script}.v{outcome.candidate_version}",
            "status": _GATE_STATUS[verdict.decision],
            "statusDetails": {"message": f"{verdict.decision}: {verdict.reason}"},
            "description": f"Promotion gate of {outcome.script} v{outcome.candidate_version} at endpoint "
            f"{outcome.endpoint}: {verdict.reason}",
            "start": start,
            "stop": stop,
            "labels": _labels(outcome, "gate"),
            "links": [writer.issue_link(outcome.incident)] if outcome.incident else [],
            "parameters": [{"name": "endpoint", "value": str(outcome.endpoint)}],
            "attachments": attachments,
            "steps": steps,
        }
    )


def _tail(path: str | None) -> str | None:
    if not path or not Path(path).is_file():
        return None
    with open(path, "rb") as log:
        log.seek(0, os.SEEK_END)
        size = log.tell()
        log.seek(max(size - _LOG_TAIL, 0))
        return log.read().decode("utf-8", errors="replace")


def _rollback_result(writer: _ResultWriter, outcome: SessionOutcome, rollback: RollbackResult,
                     start: int, stop: int) -> Path:
    status = ROLLBACK_RESULT_STATUS[rollback.status]
    if rollback.status == "already_rolled_back" and rollback.exit_code != 1:
        status = "failed"  # as rolled_back_unverified: the target failed its smoke re-run
    target = f"v{rollback.to_version}" if rollback.to_version is not None else "(no target)"
    steps = [
        _step(
            f"1. incident recorded: {rollback.incident}" if rollback.incident else "1. no incident id given",
            "passed" if rollback.incident else "skipped",
            start,
            start,
        ),
    ]
    moved = rollback.status in ("rolled_back_verified", "rolled_back_unverified")
    steps.append(
        _step(
            f"2. roll back {rollback.script} v{rollback.from_version} -> {target} "
            f"(compare-and-set{', ' + rollback.cas if rollback.cas else ''}), "
            f"active after: v{rollback.active_after}",
            "passed" if moved else status,
            start,
            stop,
            None if moved else rollback.message,
        )
    )
    attachments = [writer.json_attachment("rollback", rollback.as_dict())]
    verification = rollback.verification
    if verification is not None:
        steps.append(
            _step(
                f"3. smoke re-run on v{verification.version}: {verification.verdict} ({verification.passed} "
                f"passed, {verification.failed} failed, {verification.errors} errors)",
                "passed" if verification.verdict == "pass" else "failed",
                start,
                stop,
                verification.reason,
            )
        )
        log = _tail(verification.log)
        if log is not None:
            attachments.append(writer.attachment("verification log", log, mime="text/plain", ext="txt"))
    if rollback.manual_command:
        attachments.append(
            writer.attachment("manual rollback command", rollback.manual_command + "\n", mime="text/plain",
                              ext="txt")
        )
    return writer.result(
        {
            "name": f"scriptum rollback {rollback.script} v{rollback.from_version} -> {target}",
            "fullName": f"scriptum.rollback.{rollback.script}.v{rollback.from_version}",
            "status": status,
            "statusDetails": {"message": f"{rollback.status}: {rollback.message}"},
            "description": rollback.message,
            "start": start,
            "stop": stop,
            "labels": [
                *_labels(outcome, "rollback"),
                {"name": "scriptum.rollback.status", "value": rollback.status},
            ],
            "links": [writer.issue_link(rollback.incident)] if rollback.incident else [],
            "parameters": [
                {"name": "rollback mode", "value": rollback.mode},
                *([{"name": "compare-and-set", "value": rollback.cas}] if rollback.cas else []),
            ],
            "attachments": attachments,
            "steps": steps,
        }
    )


def _properties(values: Mapping[str, str]) -> str:
    def escape(text: str, key: bool) -> str:
        text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return text.replace("=", "\\=").replace(":", "\\:").replace(" ", "\\ ") if key else text

    return "".join(f"{escape(k, True)}={escape(v, False)}\n" for k, v in values.items())


def write_session_results(
    directory: Path,
    outcome: SessionOutcome,
    redactor: Redactor,
    *,
    link_patterns: Mapping[str, str] | None = None,
) -> list[Path]:
    """The gate result, the rollback result (when the gate failed), ``environment.properties``
    and ``executor.json``; returns the files written. Call once, from the gate's owner."""
    directory.mkdir(parents=True, exist_ok=True)
    writer = _ResultWriter(directory, redactor, link_patterns or {})
    start, stop = _ms(outcome.started_at), _ms(outcome.finished_at)
    written = [_gate_result(writer, outcome, start, stop)]
    rollback = outcome.rollback
    if rollback is not None and rollback.status != "not_needed":
        written.append(_rollback_result(writer, outcome, rollback, start, stop))
    environment = {
        "scriptum.script": str(outcome.script),
        "scriptum.candidate_version": str(outcome.candidate_version),
        "scriptum.endpoint": str(outcome.endpoint),
        "scriptum.transport": outcome.transport,
        "scriptum.verdict": outcome.verdict.decision,
        "scriptum.rollback.status": rollback.status if rollback is not None else "none",
        "scriptum.rollback.to": str(rollback.to_version) if rollback and rollback.to_version else "",
        "scriptum.incident": outcome.incident or "",
        **dict(promotion_properties(outcome)),  # publish, env changes (keys only), checklists
    }
    env_path = directory / "environment.properties"
    write_atomic(env_path, redactor.text(_properties(environment)))
    executor = {
        "name": "pytest-scriptum",
        "type": "pytest",
        "buildName": f"{outcome.script} v{outcome.candidate_version}: gate {outcome.verdict.decision}, "
        f"rollback {rollback.status if rollback is not None else 'none'}",
        "reportName": f"pytest-scriptum {outcome.script} v{outcome.candidate_version} ({outcome.endpoint})",
    }
    executor_path = directory / "executor.json"
    write_atomic(executor_path, redactor.text(json.dumps(executor, indent=2)))
    return [*written, env_path, executor_path]
