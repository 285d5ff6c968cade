"""Issue 11 inputs 9-11, whole sessions: an expectation is either the candidate's verdict or the
test's own mistake, never a silent pass and never a rollback for the author's error.

One dev server per module, seeded with ``stamp``: v1 good, v2 returns ``"yesterday"``,
``"not a uri"`` and ``"not an iri"`` where a date-time, a URI and an IRI belong (never
activated), v3 good and active (its
rollback target would be v2 — no test here may move it). Every output carries a 40-character
``code`` ("a" * 39 + "b") for the pathological patterns. Seeds activate versions in order, so
a rollback of v3 would go to v2: a wrongly failed gate would put the broken version live. The
outer test reads the server back: active version and the rollbacks in its activation history.
The session where a rollback would follow from a misclassification (input 11) gets a server of
its own, so that a regression there cannot spill into the other tests' server state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kit import ORG, TOKEN, Platform, outcomes, write_seed

from pytest_scriptum.devserver import DevServer

SCRIPT = "stamp"
_HANDLER = """
def handler(event, context):
    return {{
        "when": {when!r}, "link": {link!r}, "site": {site!r}, "code": "a" * 39 + "b", "version": {version}
    }}
"""
# "site": an IRI (RFC 3987), non-ASCII host and path; "not an iri" has spaces and no scheme.
GOOD = {"when": "2026-11-30T09:00:00Z", "link": "https://example.test/orders/7", "site": "https://例え.テスト/注文/7"}
BAD = {"when": "yesterday", "link": "not a uri", "site": "not an iri"}
VERSIONS = {
    1: _HANDLER.format(version=1, **GOOD),
    2: _HANDLER.format(version=2, **BAD),
    3: _HANDLER.format(version=3, **GOOD),
}
ACTIVE = 3

FORMATS = {
    "type": "object",
    "required": ["when", "link"],
    "properties": {
        "when": {"type": "string", "format": "date-time"},
        "link": {"type": "string", "format": "uri"},
        "site": {"type": "string", "format": "iri"},
    },
}
PATHOLOGICAL = "(a|aa)+"  # exponential backtracking on "aaa...ab"


def _started(tmp_path_factory: pytest.TempPathFactory) -> DevServer:
    seed = write_seed(tmp_path_factory.mktemp("seed"), script=SCRIPT, versions=VERSIONS, active=ACTIVE)
    return DevServer(data_dir=tmp_path_factory.mktemp("data"), seed=seed, principals={TOKEN: ORG})


def _platform(server: DevServer) -> Platform:
    addresses = server.addresses
    return Platform(
        addresses.grpc, addresses.http, token=TOKEN, org=ORG, script=SCRIPT, session_args=("-rA",)
    )


@pytest.fixture(scope="module")
def _server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with _started(tmp_path_factory) as server:
        yield server


@pytest.fixture
def platform(_server: DevServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    monkeypatch.setenv("DODIL_TOKEN", TOKEN)
    plat = _platform(_server)
    yield plat
    plat.close()


@pytest.fixture
def own_platform(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Platform]:
    """A server for one test: the one where a misclassified error would roll v3 back."""
    monkeypatch.setenv("DODIL_TOKEN", TOKEN)
    with _started(tmp_path_factory) as server:
        plat = _platform(server)
        yield plat
        plat.close()


def _suite(pytester: pytest.Pytester, source: str) -> None:
    pytester.makeini(f"[pytest]\nscriptum_script = {SCRIPT}\nscriptum_evidence = evidence/bundle.json\n")
    pytester.makepyfile(test_stamp="import pytest\n\n" + source)


def _bundle(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / "evidence" / "bundle.json").read_text())
    return data


def _untouched(platform: Platform) -> None:
    """No rollback reached the server: v3 still active, no rollback in its history."""
    assert platform.active() == ACTIVE
    assert platform.rollbacks_in_history() == []


# --- input 9: format keywords are asserted ----------------------------------------------------

FORMAT_SUITE = f"""
@pytest.mark.smoke_input({{}})
@pytest.mark.smoke_expect(schema={FORMATS!r})
def test_formats():
    pass
"""


def test_date_time_and_uri_formats_fail_a_candidate_that_breaks_them(
    platform: Platform, pytester: pytest.Pytester
) -> None:
    _suite(pytester, FORMAT_SUITE)
    # v2 is not the active version: the gate's FAIL cannot roll anything back
    result = pytester.runpytest(*platform.args(version=2), "--scriptum-rollback=off")
    assert outcomes(result) == {"test_stamp.py::test_formats": "failed"}
    result.stdout.fnmatch_lines(
        [
            "*/link: schema: 'not a uri' is not a 'uri'",
            "*/site: schema: 'not an iri' is not a 'iri'",
            "*/when: schema: 'yesterday' is not a 'date-time'",
            "verdict: FAIL - failed 1 of 1 > allowed 0",
        ]
    )
    assert result.ret == 1
    data = _bundle(pytester)
    assert data["verdict"] == "fail"
    assert (data["gate"]["passed"], data["gate"]["failed"], data["gate"]["errors"]) == (0, 1, 0)
    _untouched(platform)


def test_the_same_formats_pass_a_candidate_that_keeps_them(
    platform: Platform, pytester: pytest.Pytester
) -> None:
    _suite(pytester, FORMAT_SUITE)
    result = pytester.runpytest(*platform.args(version=ACTIVE))
    assert outcomes(result) == {"test_stamp.py::test_formats": "passed"}
    assert result.ret == 0
    data = _bundle(pytester)
    assert data["verdict"] == "pass"
    assert (data["gate"]["passed"], data["gate"]["failed"], data["gate"]["errors"]) == (1, 0, 0)
    _untouched(platform)


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ('{"properties": {"sku": {"type": "string", "format": "sku"}}}', "schema: format 'sku'"),
        ('"@schemas/sku.json"', "schema file 'schemas/sku.json': format 'sku'"),
    ],
    ids=["inline", "file"],
)
def test_a_format_nothing_checks_is_a_collection_error_naming_test_marker_and_file(
    platform: Platform, pytester: pytest.Pytester, schema: str, where: str
) -> None:
    _suite(
        pytester,
        f"""
@pytest.mark.smoke_input({{}})
@pytest.mark.smoke_expect(schema={schema})
def test_sku():
    pass


@pytest.mark.smoke_input({{}})
@pytest.mark.smoke_expect({{"version": 3}})
def test_version():
    pass
""",
    )
    pytester.mkdir("schemas")
    (pytester.path / "schemas" / "sku.json").write_text('{"properties": {"sku": {"format": "sku"}}}')
    before = platform.calls("CreateThread")
    result = pytester.runpytest(*platform.args(version=ACTIVE))
    result.stdout.fnmatch_lines(
        [
            f"*test_sku (test_stamp.py): @pytest.mark.smoke_expect: {where}: no installed format checker"
            " knows it, so it would never be asserted (checked formats: date, date-time, *",
        ]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error stops the session
    result.stdout.fnmatch_lines(["verdict: INCONCLUSIVE - collection errors: no smoke test ran"])
    assert _bundle(pytester)["verdict"] == "inconclusive"
    assert platform.calls("CreateThread") == before  # nothing ran against the candidate
    _untouched(platform)


# --- input 10: an unresolvable $ref is the test's error ------------------------------------------


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("#/$defs/missing", "$ref '#/$defs/missing' at ['properties']['when'] cannot be resolved"),
        ("https://example.test/when.json", "$ref 'https://example.test/when.json' at ['properties']['when']"),
    ],
    ids=["local", "remote"],
)
def test_an_unresolvable_ref_is_a_collection_error_not_the_candidates_failure(
    platform: Platform, pytester: pytest.Pytester, ref: str, problem: str
) -> None:
    _suite(
        pytester,
        f"""
@pytest.mark.smoke_input({{}})
@pytest.mark.smoke_expect(schema={{"properties": {{"when": {{"$ref": {ref!r}}}}}}})
def test_ref():
    pass
""",
    )
    before = platform.calls("CreateThread")
    result = pytester.runpytest(*platform.args(version=ACTIVE))
    # (brackets are fnmatch classes: plain containment)
    assert f"test_ref (test_stamp.py): @pytest.mark.smoke_expect: schema: {problem}" in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["verdict: INCONCLUSIVE - collection errors: no smoke test ran"])
    assert _bundle(pytester)["verdict"] == "inconclusive"
    assert platform.calls("CreateThread") == before
    _untouched(platform)


# --- input 11: regex matching is bounded in time -------------------------------------------------

REGEX_SUITE = f"""
@pytest.mark.smoke_input({{}})
@pytest.mark.smoke_expect(regex={{"code": {PATHOLOGICAL!r}}})
def test_marker_regex():
    pass


@pytest.mark.smoke_input({{}})
@pytest.mark.smoke_expect(schema={{"properties": {{"code": {{"pattern": "^{PATHOLOGICAL}$"}}}}}})
def test_schema_pattern():
    pass


@pytest.mark.smoke_input({{}})
@pytest.mark.smoke_expect({{"version": 3}}, regex={{"code": "a+b"}})
def test_good_regex():
    pass
"""


def test_a_pathological_regex_is_the_tests_error_not_a_failure_nor_a_hang(
    own_platform: Platform, pytester: pytest.Pytester
) -> None:
    platform = own_platform
    _suite(pytester, REGEX_SUITE)
    # a subprocess with a timeout: a hang fails this test instead of hanging the suite
    result = pytester.runpytest_subprocess(*platform.args(version=ACTIVE), timeout=120)
    assert outcomes(result) == {
        "test_stamp.py::test_marker_regex": "error",
        "test_stamp.py::test_schema_pattern": "error",
        "test_stamp.py::test_good_regex": "passed",
    }, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*regex for '/code': matching '(a|aa)+' against a 40-character string ran past the 2s bound*",
            "*schema keyword 'pattern': matching '^(a|aa)+$' against a 40-character string ran past*",
        ],
        consecutive=False,
    )
    result.stdout.no_fnmatch_line("verdict: FAIL*")
    data = _bundle(pytester)
    assert data["verdict"] == "inconclusive"
    assert (data["gate"]["passed"], data["gate"]["failed"], data["gate"]["errors"]) == (1, 0, 2)
    assert result.ret == 20  # inconclusive: a human looks, nothing is rolled back
    _untouched(platform)


def test_a_pattern_the_engine_cannot_compile_is_a_collection_error(
    platform: Platform, pytester: pytest.Pytester
) -> None:
    _suite(
        pytester,
        """
@pytest.mark.smoke_input({})
@pytest.mark.smoke_expect(regex={"code": "(a"})
def test_unbalanced():
    pass
""",
    )
    result = pytester.runpytest(*platform.args(version=ACTIVE))
    result.stdout.fnmatch_lines(
        ["*test_unbalanced (test_stamp.py): @pytest.mark.smoke_expect: bad regex for '/code': *"]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    _untouched(platform)
