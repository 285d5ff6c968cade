"""Promotion evidence: the JSON bundle, JUnit properties and Allure results."""

from pytest_scriptum.evidence.bundle import SCHEMA_VERSION, build_bundle, write_bundle

__all__ = ["SCHEMA_VERSION", "build_bundle", "write_bundle"]
