"""Promotion evidence: the JSON bundle and its schema, JUnit properties, Allure results, redaction."""

from pytest_scriptum.evidence._wiring import publish_session_evidence, register_test_evidence
from pytest_scriptum.evidence.bundle import (
    SCHEMA_VERSION,
    InvalidBundleError,
    build_bundle,
    bundle_schema,
    read_bundle,
    validate_bundle,
    write_bundle,
)
from pytest_scriptum.evidence.redaction import Redactor

__all__ = [
    "SCHEMA_VERSION",
    "InvalidBundleError",
    "Redactor",
    "build_bundle",
    "bundle_schema",
    "publish_session_evidence",
    "read_bundle",
    "register_test_evidence",
    "validate_bundle",
    "write_bundle",
]
