"""Promotion evidence, as pure writers of a session's outcome: the JSON bundle and its schema
(``bundle``), JUnit properties (``junit``), Allure results (``allure``), the terminal summary
(``summary``) and the one redactor they all use (``redaction``).

Nothing here imports the session layer, grpc or httpx: ``from pytest_scriptum.evidence import
read_bundle`` loads the standard library and, to validate, jsonschema. The writers that need more
(``allure`` reads expectations and diffs) are imported by name, not from this package.
"""

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
    "read_bundle",
    "validate_bundle",
    "write_bundle",
]
