"""Readers of the files inner sessions leave behind: the JSON bundle (validated against the shipped
schema by ``pytest_scriptum.evidence.read_bundle``), JUnit XML and Allure results.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_scriptum.evidence import read_bundle

__all__ = [
    "AllureResults",
    "JUnit",
    "JUnitCase",
    "every_file",
    "labels",
    "read_allure",
    "read_junit",
    "read_valid_bundle",
]


def read_valid_bundle(path: Path) -> dict[str, Any]:
    """Load a bundle and fail the test unless it matches the shipped schema."""
    assert path.is_file(), f"no bundle at {path}"
    return read_bundle(path)


@dataclass(frozen=True)
class JUnitCase:
    name: str
    properties: dict[str, str]
    failed: bool


@dataclass(frozen=True)
class JUnit:
    suite_properties: dict[str, str]
    cases: dict[str, JUnitCase]


def read_junit(path: Path) -> JUnit:
    """Suite properties and per-test properties of a JUnit XML file."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None, f"no testsuite in {path}"
    props = {p.get("name", ""): p.get("value", "") for p in suite.findall("properties/property")}
    cases = {}
    for case in suite.findall("testcase"):
        name = case.get("name", "")
        cases[name] = JUnitCase(
            name=name,
            properties={p.get("name", ""): p.get("value", "") for p in case.findall("properties/property")},
            failed=case.find("failure") is not None or case.find("error") is not None,
        )
    return JUnit(props, cases)


@dataclass(frozen=True)
class AllureResults:
    directory: Path
    results: list[dict[str, Any]]

    def named(self, name: str) -> list[dict[str, Any]]:
        """Results named ``name``: a session result's name, or a smoke test's pytest name (its
        Allure name adds the version: ``test_x · v2``, ``test_x · v1 verification``)."""
        return [r for r in self.results if r["name"] == name or r["name"].startswith(f"{name} · v")]

    def one(self, name: str, parent_suite: str) -> dict[str, Any]:
        found = [r for r in self.named(name) if labels(r).get("parentSuite") == parent_suite]
        assert len(found) == 1, f"{len(found)} results named {name!r} in {parent_suite!r}: {self.names()}"
        return found[0]

    def names(self) -> list[tuple[str, str | None]]:
        return sorted((r["name"], labels(r).get("parentSuite")) for r in self.results)

    def attachment(self, result: dict[str, Any], name: str) -> str:
        found = [a for a in result.get("attachments", []) if a["name"] == name]
        assert len(found) == 1, f"attachment {name!r} of {result['name']}: {result.get('attachments')}"
        return (self.directory / found[0]["source"]).read_text(encoding="utf-8")


def labels(result: Mapping[str, Any]) -> dict[str, str]:
    return {label["name"]: label["value"] for label in result.get("labels", [])}


def read_allure(directory: Path) -> AllureResults:
    return AllureResults(
        directory,
        [json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*-result.json"))],
    )


def every_file(*roots: Path) -> Iterator[Path]:
    """Every file under the given files or directories."""
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in sorted(root.rglob("*")) if p.is_file())
