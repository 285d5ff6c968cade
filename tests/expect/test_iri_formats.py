"""``iri`` / ``iri-reference`` formats (issue 11, remainder of input 9): asserted by RFC 3987
section 3.1's mapping to a URI, checked by the installed uri checker (rfc3986-validator), instead of
jsonschema's rfc3987-syntax checker, which would build a lark grammar in every evidence reader."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_scriptum.expect import iri_to_uri, usable_validator

DRAFTS = [
    None,  # 2020-12
    "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema#",
]
IRIS = [
    "https://例え.テスト/注文/7?q=値#frag",
    "ftp://ü@host:21/ä",
    "mailto:José@example.com",
    "urn:isbn:0451450523",
    "http://[::1]/ä",
    "http://x/?\ue000",  # iprivate is allowed in the query
    "http://x/\U000e1000",  # the last ucschar block starts at U+E1000
]
NOT_IRIS = [
    "not an iri",
    "https://example.com/a b",
    "http://x/\ue000",  # iprivate outside the query
    "http://x/#\ue000",
    "a:\ufdd0",  # a noncharacter is not ucschar
    "a:\ufffe",
    "http://x/\U000e0fff",
    "ḧttp://x/",  # non-ASCII scheme
    "http://x:8ä0/",  # non-ASCII port
    "http://x/%zz",
]
RELATIVE = ["//host/päth", "/relative/ä", "?q=ü", ""]


@pytest.mark.parametrize("draft", DRAFTS)
def test_iri_accepts_rfc_3987_iris_and_refuses_the_rest(draft: str | None) -> None:
    schema = {"format": "iri", **({"$schema": draft} if draft else {})}
    validator = usable_validator(schema)
    assert [text for text in IRIS if not validator.is_valid(text)] == []
    assert [text for text in NOT_IRIS if validator.is_valid(text)] == []
    assert [text for text in RELATIVE if validator.is_valid(text)] == []  # references, not IRIs


@pytest.mark.parametrize("draft", DRAFTS)
def test_iri_reference_also_accepts_relative_references(draft: str | None) -> None:
    schema = {"format": "iri-reference", **({"$schema": draft} if draft else {})}
    validator = usable_validator(schema)
    assert [text for text in IRIS + RELATIVE if not validator.is_valid(text)] == []
    assert [text for text in NOT_IRIS if validator.is_valid(text)] == []


def test_the_mapping_percent_encodes_utf8_and_keeps_ascii() -> None:
    assert iri_to_uri("http://例/ä?x=1") == "http://%E4%BE%8B/%C3%A4?x=1"
    assert iri_to_uri("a:\ufdd0") is None


def test_checking_iris_loads_no_parser_into_evidence_readers() -> None:
    # jsonschema's own iri checker (rfc3987-syntax) is absent: importing jsonschema, as read_bundle
    # does, loads no lark; the iri checker here needs nothing beyond the uri checker.
    code = (
        "import sys, jsonschema\n"
        "from pytest_scriptum.expect import usable_validator\n"
        "assert not usable_validator({'format': 'iri'}).is_valid('not an iri')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lark', 'rfc3987_syntax', 'rfc3987')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
