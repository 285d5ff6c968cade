"""Check a rendered Allure 3 report of the invoice-parser example (used by render_allure.sh).

Reads the report's data files (``data/test-results/*.json``) and exits 1 naming what is missing:
the candidate and verification runs of the smoke tests under their own versioned top nodes of
Allure 3's default tree (``titlePath``) with the version in each name, the failed test's
attachments and steps, the scriptum labels and the incident link, and the passed rollback result
beside the gate result under the promotion node.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SMOKE_TEST = "test_prod_smoke"
ROLLBACK = "scriptum rollback invoice-parser v4 -> v3"
CANDIDATE_NODE = "invoice-parser v4 (candidate)"
VERIFICATION_NODE = "invoice-parser v3 (verification of v4)"
PROMOTION_NODE = "invoice-parser v4 (promotion gate)"
ATTACHMENTS = {"input", "expected", "output", "thread", "mismatches", "diff"}


def _attachments(result: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for entry in result.get("steps", []):
        if entry.get("type") == "attachment":
            names.add(str(entry["link"]["name"]))
    names.update(str(a.get("name")) for a in result.get("attachments", []) or [])
    return names


def _labels(result: dict[str, Any]) -> dict[str, str]:
    return {str(label["name"]): str(label["value"]) for label in result.get("labels", [])}


def check(report: Path) -> list[str]:
    """Every problem found (empty when the report is complete)."""
    files = sorted((report / "data" / "test-results").glob("*.json"))
    if not files:
        return [f"no test results in {report}/data/test-results"]
    results = [json.loads(path.read_text(encoding="utf-8")) for path in files]
    problems = []
    smoke = [r for r in results if str(r.get("name", "")).startswith(SMOKE_TEST)]
    by_version = {_labels(r).get("scriptum.version"): r for r in smoke}
    candidate, verification = by_version.get("4"), by_version.get("3")
    if candidate is None or candidate.get("status") != "failed":
        problems.append(f"{SMOKE_TEST} on candidate v4 missing or not failed")
    if verification is None or verification.get("status") != "passed":
        problems.append(f"{SMOKE_TEST} on verification v3 missing or not passed")
    for result, node, name in (
        (candidate, CANDIDATE_NODE, f"{SMOKE_TEST} · v4"),
        (verification, VERIFICATION_NODE, f"{SMOKE_TEST} · v3 verification"),
    ):
        if result is None:
            continue
        if result.get("name") != name:
            problems.append(f"{SMOKE_TEST} is named {result.get('name')!r}, expected {name!r}")
        if (result.get("titlePath") or [None])[0] != node:
            problems.append(f"{name!r} is not under {node!r}: titlePath {result.get('titlePath')}")
    for result in results:
        labels = _labels(result)
        top = (result.get("titlePath") or [None])[0]
        if "scriptum.version" in labels and labels.get("parentSuite") != top:
            parent = labels.get("parentSuite")
            problems.append(f"{result.get('name')!r}: parentSuite {parent!r} is not its tree node {top!r}")
    if candidate is not None:
        missing = ATTACHMENTS - _attachments(candidate)
        if missing:
            problems.append(f"{SMOKE_TEST} v4 lacks attachments {sorted(missing)}")
        steps = [s.get("name") for s in candidate.get("steps", []) if s.get("type") == "step"]
        if steps != ["step 1 extract", "step 2 validate", "step 3 enrich"]:
            problems.append(f"{SMOKE_TEST} v4 steps are {steps}")
        if _labels(candidate).get("scriptum.script") != "invoice-parser":
            problems.append(f"{SMOKE_TEST} v4 lacks the scriptum.script label")
        if not any("INC-EXAMPLE" in str(link.get("name")) for link in candidate.get("links", [])):
            problems.append(f"{SMOKE_TEST} v4 lacks the incident link")
    rollback = [r for r in results if r.get("name") == ROLLBACK]
    if len(rollback) != 1 or rollback[0].get("status") != "passed":
        statuses = [r.get("status") for r in rollback]
        problems.append(f"expected one passed result {ROLLBACK!r}, found {statuses}")
    elif not {"rollback", "verification log"} <= _attachments(rollback[0]):
        problems.append(f"{ROLLBACK!r} lacks its rollback / verification log attachments")
    gate = [r for r in results if str(r.get("name", "")).startswith("scriptum gate invoice-parser v4")]
    if not gate:
        problems.append("no scriptum gate result")
    for result in gate + rollback:
        if result.get("titlePath", [None])[0] != PROMOTION_NODE:
            where = result.get("titlePath")
            problems.append(f"{result.get('name')!r} is not under {PROMOTION_NODE!r}: titlePath {where}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: check_allure_report.py REPORT_DIR", file=sys.stderr)
        return 2
    problems = check(Path(argv[1]))
    for problem in problems:
        print(f"check_allure_report: {problem}", file=sys.stderr)
    if not problems:
        print("check_allure_report: ok: smoke tests (v4, v3), attachments, steps, rollback result")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
