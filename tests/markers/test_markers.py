"""Smoke markers through real pytest collection (pytester), the way the plugin calls them."""

from __future__ import annotations

import json
import pickle
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_scriptum.markers import (
    CASE_PARAM,
    MARKER_DOCS,
    UNSET,
    Expectation,
    ItemMarkers,
    MarkerError,
    ScriptumOptions,
    SmokeCase,
    SmokeSpec,
    item_markers,
    scriptum_options,
    smoke_spec,
)
from pytest_scriptum.markers import values as marker_values

# How the plugin wires the markers (pytest_scriptum.plugin does the same).
CONFTEST = """
import pytest
from pytest_scriptum.markers import CASE_PARAM, MARKER_DOCS, MarkerError, validate_definition


def pytest_configure(config):
    for line in MARKER_DOCS:
        config.addinivalue_line("markers", line)


def pytest_generate_tests(metafunc):
    try:
        cases = validate_definition(metafunc.definition, metafunc.definition.path)
    except MarkerError as err:
        raise pytest.Collector.CollectError(str(err)) from None
    if cases is not None:
        metafunc.fixturenames.append(CASE_PARAM)
        metafunc.parametrize(CASE_PARAM, cases, ids=[case.id for case in cases])
"""

ISOLATE = ("-p", "no:scriptum", "-p", "no:cacheprovider", "--strict-markers")


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # Only this conftest's wiring: no entry-point plugins (the real plugin, allure, hypothesis...),
    # which also keeps each in-process run fast.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest(CONFTEST)
    return pytester


def collect(pytester: pytest.Pytester, source: str) -> dict[str, pytest.Item]:
    pytester.makepyfile(test_smoke=source)
    items, _ = pytester.inline_genitems(*ISOLATE)
    return {item.name: item for item in items}


def spec_of(items: dict[str, pytest.Item], name: str) -> SmokeSpec:
    spec = smoke_spec(items[name])
    assert spec is not None, f"{name} has no smoke spec"
    return spec


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")


# --- valid markers -> specs --------------------------------------------------------------------


def test_inline_input_and_expectation(suite: pytest.Pytester) -> None:
    items = collect(
        suite,
        """
        import pytest

        @pytest.mark.smoke_input({"text": "hi", "n": (1, 2)})
        @pytest.mark.smoke_expect({"total": 1.5}, match="exact", approx={"total": 0.01},
                                  regex={"lines.0.sku": "[A-Z]+"}, status="COMPLETED")
        def test_a():
            pass

        def test_plain():
            pass
        """,
    )
    spec = spec_of(items, "test_a")
    assert spec.input == {"text": "hi", "n": [1, 2]}  # tuples become JSON arrays
    assert spec.expect.output == {"total": 1.5}
    assert spec.expect.match == "exact"
    # Paths are kept as JSON Pointers, whichever form was written (here the dotted one).
    assert spec.expect.approx == {"/total": 0.01}
    assert spec.expect.regex is not None and spec.expect.regex["/lines/0/sku"].pattern == "[A-Z]+"
    assert spec.options == ScriptumOptions()
    assert spec.case is None
    assert smoke_spec(items["test_plain"]) is None


def test_file_references_escape_and_null(suite: pytest.Pytester) -> None:
    write_json(suite.path / "data" / "in.json", {"from": "file"})
    write_json(suite.path / "data" / "out.json", None)
    write_json(suite.path / "schema.json", {"type": "object"})
    items = collect(
        suite,
        """
        import pytest
        from pytest_scriptum.markers import JSON_NULL

        @pytest.mark.smoke_input("@data/in.json")
        @pytest.mark.smoke_expect("@data/out.json", schema="@schema.json")
        def test_files():
            pass

        @pytest.mark.smoke_input("@@literal")
        @pytest.mark.smoke_expect(output=JSON_NULL, status="FAILED")
        def test_escape():
            pass

        @pytest.mark.smoke_input("plain")
        @pytest.mark.smoke_expect(None, schema="declared")
        def test_none_means_unset():
            pass
        """,
    )
    files = spec_of(items, "test_files")
    assert files.input == {"from": "file"}
    assert files.expect.output is None  # the file holds JSON null: expect a null output
    assert files.expect.schema == {"type": "object"}
    escape = spec_of(items, "test_escape")
    assert escape.input == "@literal"
    assert escape.expect.output is None
    assert escape.expect.status == "FAILED"
    unset = spec_of(items, "test_none_means_unset")
    assert unset.input == "plain"
    assert unset.expect.output is UNSET
    assert unset.expect.schema == "declared"


def test_closest_marker_wins_and_inherited_expectation_is_a_default(suite: pytest.Pytester) -> None:
    items = collect(
        suite,
        """
        import pytest

        pytestmark = [
            pytest.mark.scriptum("mod-script", timeout=5),
            pytest.mark.smoke_expect(schema="declared"),
        ]

        @pytest.mark.smoke_input(1)
        def test_module_level():
            pass

        @pytest.mark.scriptum(script="fn-script", critical=True, serial=True, env=False)
        @pytest.mark.smoke_input(2)
        @pytest.mark.smoke_expect(3)
        def test_function_level():
            pass

        def test_plain_test_in_a_module_with_expectations():
            pass

        @pytest.mark.scriptum("class-script")
        @pytest.mark.smoke_expect(status="FAILED")
        class TestGroup:
            @pytest.mark.smoke_input(None)
            def test_in_class(self):
                pass
        """,
    )
    module_level = spec_of(items, "test_module_level")
    assert module_level.options == ScriptumOptions(script="mod-script", timeout=5.0)
    assert module_level.expect == Expectation(schema="declared")
    function_level = spec_of(items, "test_function_level")
    assert function_level.options == ScriptumOptions(
        "fn-script", timeout=None, env=False, critical=True, serial=True
    )
    assert function_level.expect == Expectation(output=3)
    assert smoke_spec(items["test_plain_test_in_a_module_with_expectations"]) is None
    in_class = spec_of(items, "test_in_class")
    assert in_class.input is None
    assert in_class.options.script == "class-script"
    assert in_class.expect == Expectation(status="FAILED")


def test_marked_subclass_of_a_marked_class_is_not_a_repeat(suite: pytest.Pytester) -> None:
    items = collect(
        suite,
        """
        import pytest

        @pytest.mark.scriptum("base")
        class TestBase:
            pass

        @pytest.mark.scriptum("child", critical=True)
        class TestChild(TestBase):
            @pytest.mark.smoke_input(1)
            def test_child(self):
                pass
        """,
    )
    assert spec_of(items, "test_child").options == ScriptumOptions("child", critical=True)


def test_smoke_cases_become_parametrized_tests(suite: pytest.Pytester) -> None:
    cases = suite.path / "cases"
    write_json(
        cases / "b.json", {"id": "second", "input": "@inputs/b.json", "expect": {"output": "@out/b.json"}}
    )
    write_json(cases / "inputs" / "b.json", {"text": "B"})
    write_json(cases / "out" / "b.json", {"total": 2})
    write_json(cases / "a.json", {"id": "first", "input": None})
    write_json(
        cases / "c.json",
        {"id": "third", "input": [1], "expect": {"status": "FAILED", "regex": {"error": "x+"}}},
    )
    (cases / "notes.txt").write_text("not a case", encoding="utf-8")
    items = collect(
        suite,
        """
        import pytest

        @pytest.mark.scriptum("cased")
        @pytest.mark.smoke_expect(schema={"type": "object"})
        @pytest.mark.smoke_cases("cases/*.json")
        def test_case():
            pass
        """,
    )
    assert list(items) == ["test_case[first]", "test_case[second]", "test_case[third]"]
    first = spec_of(items, "test_case[first]")
    assert first.input is None
    assert first.expect == Expectation(schema={"type": "object"})  # no "expect" key: the marker's
    assert first.options.script == "cased"
    assert first.case is not None and first.case.path == cases / "a.json"
    second = spec_of(items, "test_case[second]")
    assert second.input == {"text": "B"}  # refs in a case file are relative to the case file
    assert second.expect == Expectation(output={"total": 2})
    third = spec_of(items, "test_case[third]")
    assert third.expect.status == "FAILED"
    assert isinstance(items["test_case[third]"].callspec.params[CASE_PARAM], SmokeCase)  # type: ignore[attr-defined]


def test_cases_run_and_markers_are_registered(suite: pytest.Pytester) -> None:
    write_json(suite.path / "cases" / "one.json", {"id": "one", "input": 1})
    suite.makepyfile(
        test_run="""
        import pytest
        from pytest_scriptum.markers import CASE_PARAM

        @pytest.mark.smoke_cases("cases/*.json")
        def test_case(request):
            assert request.node.callspec.params[CASE_PARAM].id == "one"
        """
    )
    result = suite.runpytest(*ISOLATE, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_case?one? PASSED*"])
    markers = suite.runpytest(*ISOLATE, "--markers")
    markers.stdout.fnmatch_lines(
        [
            "@pytest.mark.scriptum(script=None, *, timeout=None, env=True, critical=False, serial=False, "
            "repeat=None, min_pass=None, advisory=False):*",
            "@pytest.mark.smoke_input(value):*",
            "@pytest.mark.smoke_expect(output=None, *, match='subset', schema=None, approx=None, regex=None, "
            "status='COMPLETED'):*",
            "@pytest.mark.smoke_cases(glob):*",
        ]
    )


# --- mistakes: collection errors that name the test, the marker and the file ----------------------

ERRORS: list[tuple[str, str, str, str]] = [
    # (id, decorators, marker, problem)
    (
        "expect-unknown-kwarg",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(outptu={})",
        "smoke_expect",
        "unknown argument 'outptu' (accepted: output, match, schema, approx, regex, status)",
    ),
    (
        "expect-two-positionals",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(1, 2)",
        "smoke_expect",
        "takes at most one positional argument (output), got 2",
    ),
    (
        "expect-output-twice",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(1, output=2)",
        "smoke_expect",
        "output given both positionally and as a keyword",
    ),
    (
        "missing-input-file",
        "@pytest.mark.smoke_input('@nope/in.json')",
        "smoke_input",
        "input file 'nope/in.json' not found (nope/in.json)",
    ),
    (
        "invalid-json-file",
        "@pytest.mark.smoke_input('@bad.json')",
        "smoke_input",
        "input file bad.json is not valid JSON: Expecting property name enclosed in double quotes "
        "at line 2 column 1",
    ),
    (
        "nan-in-json-file",
        "@pytest.mark.smoke_input('@nan.json')",
        "smoke_input",
        "input file nan.json is not valid JSON: NaN is not valid JSON",
    ),
    (
        "duplicate-key-in-json-file",
        "@pytest.mark.smoke_input('@dup.json')",
        "smoke_input",
        "input file dup.json is not valid JSON: duplicate object key 'a'",
    ),
    (
        "input-directory",
        "@pytest.mark.smoke_input('@cases')",
        "smoke_input",
        "input file 'cases' is a directory",
    ),
    ("input-empty-ref", "@pytest.mark.smoke_input('@')", "smoke_input", "empty input file reference '@'"),
    (
        "input-nan",
        "@pytest.mark.smoke_input({'a': [float('nan')]})",
        "smoke_input",
        "/a/0: nan is not a JSON number (NaN and infinity are not JSON)",
    ),
    (
        "input-set",
        "@pytest.mark.smoke_input({'a': {1, 2}})",
        "smoke_input",
        "/a: set {1, 2} is not a JSON value (use dict, list, str, int, float, bool or None)",
    ),
    ("input-int-key", "@pytest.mark.smoke_input({1: 2})", "smoke_input", "object key 1 is not a string"),
    (
        "input-no-args",
        "@pytest.mark.smoke_input()",
        "smoke_input",
        "takes exactly one positional argument: the input value or '@file.json'",
    ),
    (
        "input-kwarg",
        "@pytest.mark.smoke_input(value=1)",
        "smoke_input",
        "takes exactly one positional argument",
    ),
    (
        "schema-invalid",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(schema={'type': 12})",
        "smoke_expect",
        "schema: not a valid JSON Schema: 12 is not valid under any of the given schemas at /type",
    ),
    (
        "schema-file-missing",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(schema='@out.json')",
        "smoke_expect",
        "schema file 'out.json' not found (out.json)",
    ),
    (
        "schema-plain-string",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(schema='object')",
        "smoke_expect",
        "schema must be a dict, '@file.json' or 'declared', got 'object'",
    ),
    (
        "schema-unknown-dialect",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(schema={'$schema': 'https://x.invalid/s'})",
        "smoke_expect",
        "schema: unknown $schema 'https://x.invalid/s'",
    ),
    (
        "bad-regex",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(regex={'a': '('})",
        "smoke_expect",
        "bad regex for '/a': missing ) at position 1",
    ),
    (
        "bad-regex-path",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(regex={'a..b': 'x'})",
        "smoke_expect",
        "regex: bad path 'a..b': empty segment (paths are JSON Pointers like '/totals/amount' or "
        "'/lines/0/price' (RFC 6901: '~1' is a '/' and '~0' a '~' inside a key; '' is the whole output); "
        "the dotted 'lines.0.price' is read too)",
    ),
    (
        "bad-pointer-escape",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(regex={'/a~2b': 'x'})",
        "smoke_expect",
        "regex: bad path '/a~2b': '~' must be followed by 0 or 1 (paths are JSON Pointers",
    ),
    (
        "regex-path-twice",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(regex={'/a/0': 'x', 'a.0': 'y'})",
        "smoke_expect",
        "regex path '/a/0' is given twice",
    ),
    (
        "approx-without-output",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(approx=0.1)",
        "smoke_expect",
        "approx needs an expected output (it is the tolerance for comparing output numbers)",
    ),
    (
        "approx-negative",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect({'a': 1}, approx=-1)",
        "smoke_expect",
        "approx must be a non-negative finite number, got -1",
    ),
    (
        "approx-path-not-in-output",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect({'a': 1}, approx={'b': 0.1})",
        "smoke_expect",
        "approx path '/b' is not in the expected output",
    ),
    (
        "approx-path-not-a-number",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect({'a': ['x']}, approx={'a.0': 0.1})",
        "smoke_expect",
        "approx path '/a/0' leads to 'x' there, not a number",
    ),
    (
        "status-unknown",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(status='OK')",
        "smoke_expect",
        "status must be one of COMPLETED, FAILED, PAUSED, CANCELLED, got 'OK'",
    ),
    (
        # the invented v1 vocabulary is gone: SUCCEEDED is COMPLETED now, a deadline is FAILED
        "status-v1-succeeded",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(status='SUCCEEDED')",
        "smoke_expect",
        "status must be one of COMPLETED, FAILED, PAUSED, CANCELLED, got 'SUCCEEDED'",
    ),
    (
        "status-not-settled",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(status='RUNNING')",
        "smoke_expect",
        "status must be one of COMPLETED, FAILED, PAUSED, CANCELLED, got 'RUNNING'",
    ),
    (
        "match-unknown",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(1, match='fuzzy')",
        "smoke_expect",
        "match must be 'subset' or 'exact', got 'fuzzy'",
    ),
    (
        "expect-without-input",
        "@pytest.mark.smoke_expect(1)",
        "smoke_expect",
        "needs smoke_input or smoke_cases on the same test (nothing would run)",
    ),
    (
        "input-and-cases",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_cases('cases/*.json')",
        "smoke_cases",
        "a test cannot carry both smoke_input and smoke_cases; use one",
    ),
    (
        "repeated-marker",
        "@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_input(2)",
        "smoke_input",
        "applied more than once to the test function; apply it once",
    ),
    (
        "scriptum-unknown-kwarg",
        "@pytest.mark.scriptum('s', retries=3)",
        "scriptum",
        "unknown argument 'retries' (accepted: script, timeout, env, critical, serial, repeat, min_pass, "
        "advisory)",
    ),
    (
        "scriptum-two-positionals",
        "@pytest.mark.scriptum('a', 'b')",
        "scriptum",
        "takes at most one positional argument (script), got 2",
    ),
    ("scriptum-timeout-zero", "@pytest.mark.scriptum(timeout=0)", "scriptum", "timeout must be a positive"),
    (
        "scriptum-timeout-bool",
        "@pytest.mark.scriptum(timeout=True)",
        "scriptum",
        "timeout must be a positive",
    ),
    (
        "scriptum-env-str",
        "@pytest.mark.scriptum(env='yes')",
        "scriptum",
        "env must be True or False, got 'yes'",
    ),
    (
        "scriptum-script-int",
        "@pytest.mark.scriptum(4)",
        "scriptum",
        "script must be a non-empty string, got 4",
    ),
    (
        "cases-no-match",
        "@pytest.mark.smoke_cases('nothing/*.json')",
        "smoke_cases",
        "glob 'nothing/*.json' matched no files in .",
    ),
    (
        "cases-absolute-glob",
        "@pytest.mark.smoke_cases('/etc/*.json')",
        "smoke_cases",
        "the glob '/etc/*.json' must be relative to the test file's directory",
    ),
    (
        "cases-unknown-key",
        "@pytest.mark.smoke_cases('cases/unknown.json')",
        "smoke_cases",
        "case file cases/unknown.json: unknown key 'inptu' (accepted: id, input, expect)",
    ),
    (
        "cases-duplicate-id",
        "@pytest.mark.smoke_cases('cases/dup-*.json')",
        "smoke_cases",
        "duplicate case id 'same' in cases/dup-1.json and cases/dup-2.json",
    ),
    (
        "cases-missing-id",
        "@pytest.mark.smoke_cases('cases/noid.json')",
        "smoke_cases",
        "case file cases/noid.json: 'id' must be a non-empty string, got None",
    ),
    (
        "cases-missing-input",
        "@pytest.mark.smoke_cases('cases/noinput.json')",
        "smoke_cases",
        "case file cases/noinput.json: 'input' is required",
    ),
    (
        "cases-invalid-json",
        "@pytest.mark.smoke_cases('cases/broken.json')",
        "smoke_cases",
        "case file cases/broken.json is not valid JSON: Expecting value at line 1 column 8",
    ),
    (
        "cases-not-an-object",
        "@pytest.mark.smoke_cases('cases/list.json')",
        "smoke_cases",
        "case file cases/list.json: must be a JSON object with keys id, input, expect; got [1]",
    ),
    (
        "cases-bad-expect-key",
        "@pytest.mark.smoke_cases('cases/badexpect.json')",
        "smoke_cases",
        "case file cases/badexpect.json: expect: unknown key in 'expect' 'stauts' "
        "(accepted: output, match, schema, approx, regex, status)",
    ),
    (
        "cases-expect-file-relative-to-case",
        "@pytest.mark.smoke_cases('cases/reffile.json')",
        "smoke_cases",
        "case file cases/reffile.json: expect: schema file 'schemas/s.json' not found (cases/schemas/s.json)",
    ),
    (
        "cases-two-args",
        "@pytest.mark.smoke_cases('a', 'b')",
        "smoke_cases",
        "takes exactly one positional argument: a glob relative to the test file",
    ),
]


def _error_fixtures(root: Path) -> None:
    (root / "bad.json").write_text('{"a": 1,\n}', encoding="utf-8")
    (root / "nan.json").write_text('{"a": NaN}', encoding="utf-8")
    (root / "dup.json").write_text('{"a": 1, "a": 2}', encoding="utf-8")
    cases = root / "cases"
    write_json(cases / "ok.json", {"id": "ok", "input": 1})
    write_json(cases / "unknown.json", {"id": "u", "inptu": 1})
    write_json(cases / "dup-1.json", {"id": "same", "input": 1})
    write_json(cases / "dup-2.json", {"id": "same", "input": 2})
    write_json(cases / "noid.json", {"input": 1})
    write_json(cases / "noinput.json", {"id": "x"})
    (cases / "broken.json").write_text('{"id": }', encoding="utf-8")
    write_json(cases / "list.json", [1])
    write_json(cases / "badexpect.json", {"id": "x", "input": 1, "expect": {"stauts": "FAILED"}})
    write_json(cases / "reffile.json", {"id": "x", "input": 1, "expect": {"schema": "@schemas/s.json"}})


def assert_clean_collection_error(result: pytest.RunResult, test: str, marker: str, problem: str) -> None:
    output = result.stdout.str() + result.stderr.str()
    expected = f"{test} (test_smoke.py): @pytest.mark.{marker}: {problem}"
    assert expected in output, output
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output
    assert "pytest_scriptum/markers/" not in output  # no frames from plugin internals
    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection errors stop the session


@pytest.mark.parametrize(
    ("decorators", "marker", "problem"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_marker_mistake_is_a_clean_collection_error(
    suite: pytest.Pytester, decorators: str, marker: str, problem: str
) -> None:
    _error_fixtures(suite.path)
    suite.makepyfile(test_smoke=f"import pytest\n\n{decorators}\ndef test_totals():\n    pass\n")
    result = suite.runpytest(*ISOLATE)
    assert_clean_collection_error(result, "test_totals", marker, problem)


def test_inherited_marker_mistake_names_the_test_in_its_class(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_smoke="""
        import pytest

        pytestmark = pytest.mark.scriptum(timeout=-1)

        class TestInvoices:
            @pytest.mark.smoke_input(1)
            def test_totals(self):
                pass
        """
    )
    result = suite.runpytest(*ISOLATE)
    assert_clean_collection_error(
        result, "TestInvoices::test_totals", "scriptum", "timeout must be a positive finite number, got -1"
    )


def test_error_in_a_subdirectory_shows_paths_from_the_rootdir(suite: pytest.Pytester) -> None:
    smoke = suite.mkpydir("smoke")
    (smoke / "test_invoice.py").write_text(
        "import pytest\n\n@pytest.mark.smoke_input(1)\n@pytest.mark.smoke_expect(schema='@out.json')\n"
        "def test_totals():\n    pass\n",
        encoding="utf-8",
    )
    result = suite.runpytest(*ISOLATE)
    output = result.stdout.str()
    assert (
        "test_totals (smoke/test_invoice.py): @pytest.mark.smoke_expect: schema file 'out.json' not found "
        "(smoke/out.json)"
    ) in output
    assert "Traceback" not in output and "INTERNALERROR" not in output


# --- smoke_spec on items that skipped validation -----------------------------------------------


def test_smoke_spec_raises_marker_error_on_bad_items(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the validating conftest, smoke_spec itself still reports only MarkerError."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini("[pytest]\nmarkers =\n    smoke_input\n    smoke_expect\n    scriptum\n")
    pytester.makepyfile(
        test_smoke="""
        import pytest

        @pytest.mark.smoke_input({"a": object()})
        def test_bad_input():
            pass

        @pytest.mark.smoke_expect(1)
        def test_expect_alone():
            pass

        @pytest.mark.scriptum(critical="yes")
        @pytest.mark.smoke_input(1)
        def test_bad_options():
            pass

        @pytest.mark.parametrize("_scriptum_case", ["not a case"])
        def test_fake_case(_scriptum_case):
            pass
        """
    )
    items, _ = pytester.inline_genitems()
    problems: dict[str, str] = {}
    for item in items:
        with pytest.raises(MarkerError) as info:
            smoke_spec(item)
        problems[item.name] = str(info.value)
    assert re.match(
        r"test_bad_input \(test_smoke.py\): @pytest.mark.smoke_input: \/a: object ",
        problems["test_bad_input"],
    )
    assert problems["test_expect_alone"].endswith(
        "smoke_expect: " + "needs smoke_input or smoke_cases on the same test (nothing would run)"
    )
    assert problems["test_bad_options"].endswith("scriptum: critical must be True or False, got 'yes'")
    assert "holds 'not a case', not a loaded smoke case" in problems["test_fake_case[not a case]"]


def test_marker_error_fields_and_pickling() -> None:
    err = MarkerError(test="test_x", marker="smoke_cases", file="smoke/t.py", problem="bad")
    assert str(err) == "test_x (smoke/t.py): @pytest.mark.smoke_cases: bad"
    assert (err.test, err.marker, err.file, err.problem) == ("test_x", "smoke_cases", "smoke/t.py", "bad")
    copy = pickle.loads(pickle.dumps(err))
    assert (str(copy), copy.problem) == (str(err), "bad")


def test_specs_pickle(suite: pytest.Pytester) -> None:
    """Specs may cross process boundaries (xdist): sentinels and compiled patterns survive."""
    items = collect(
        suite,
        """
        import pytest

        @pytest.mark.smoke_input([1])
        @pytest.mark.smoke_expect(schema="declared", regex={"a": "x+"})
        def test_a():
            pass
        """,
    )
    spec = spec_of(items, "test_a")
    copy = pickle.loads(pickle.dumps(spec))
    assert copy == spec
    assert copy.expect.output is UNSET


# --- one parse per test, cached in the item's stash ----------------------------------------------


def test_an_item_is_parsed_once_whoever_asks(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The options and the spec come from one parse kept in the item's stash: the setup, the
    report and the evidence writers ask again at no cost, and an input file is read once per node
    (the definition at collection, the item on first use)."""
    write_json(suite.path / "in.json", {"n": 1})
    reads: list[str] = []
    real_load = marker_values.load_json_file

    def counting_load(ref: str, where: Any, what: str) -> Any:
        reads.append(ref)
        return real_load(ref, where, what)

    monkeypatch.setattr(marker_values, "load_json_file", counting_load)
    items = collect(
        suite,
        """
        import pytest

        @pytest.mark.scriptum("s", critical=True)
        @pytest.mark.smoke_input("@in.json")
        def test_a():
            pass
        """,
    )
    assert reads == ["in.json"]  # validate_definition, at collection
    item = items["test_a"]
    first = item_markers(item)
    assert first == ItemMarkers(
        options=ScriptumOptions("s", critical=True),
        spec=SmokeSpec(input={"n": 1}, expect=Expectation(), options=ScriptumOptions("s", critical=True)),
    )
    (suite.path / "in.json").unlink()  # a second parse would fail now
    assert smoke_spec(item) is first.spec
    assert scriptum_options(item) is first.options
    assert item_markers(item) == first
    assert reads == ["in.json", "in.json"]


def test_a_bad_item_raises_the_same_error_on_every_call_and_keeps_its_options(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the validating conftest: the parse fails once, every later call raises the same
    MarkerError, and the ``scriptum`` options stay readable when only the smoke arguments are wrong
    (the report and the evidence still need the test's script)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini("[pytest]\nmarkers =\n    smoke_input\n    scriptum\n")
    pytester.makepyfile(
        test_smoke="""
        import pytest

        @pytest.mark.scriptum("shop", serial=True)
        @pytest.mark.smoke_input("@missing.json")
        def test_bad_input():
            pass

        @pytest.mark.scriptum(serial="yes")
        def test_bad_options_without_a_run():
            pass
        """
    )
    items = {item.name: item for item in pytester.inline_genitems()[0]}
    bad_input = items["test_bad_input"]
    problems = set()
    for ask in (smoke_spec, item_markers, smoke_spec):
        with pytest.raises(MarkerError) as info:
            ask(bad_input)
        problems.add(str(info.value))
    assert problems == {
        "test_bad_input (test_smoke.py): @pytest.mark.smoke_input: input file 'missing.json' not found "
        "(missing.json)"
    }
    assert scriptum_options(bad_input) == ScriptumOptions("shop", serial=True)

    no_run = items["test_bad_options_without_a_run"]
    assert smoke_spec(no_run) is None  # declares no run: nothing to hold against it there
    with pytest.raises(MarkerError, match="serial must be True or False, got 'yes'"):
        scriptum_options(no_run)
    with pytest.raises(MarkerError, match="serial must be True or False"):
        item_markers(no_run)


# --- the records' signatures are the markers' signatures ---------------------------------------


def test_records_take_marker_keywords_only_by_keyword() -> None:
    """The one positional of a record is its marker's positional; every other field is keyword-only,
    so a key a record does not take is Python's own TypeError."""
    assert ScriptumOptions("s", timeout=2.0) == ScriptumOptions(script="s", timeout=2.0)
    assert Expectation({"a": 1}).output == {"a": 1}
    with pytest.raises(TypeError):
        ScriptumOptions("s", 2.0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        ScriptumOptions(retries=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Expectation({"a": 1}, "exact")  # type: ignore[misc]
    with pytest.raises(TypeError):
        SmokeCase("id", 1, Expectation(), Path("c.json"))  # type: ignore[misc]
    assert MARKER_DOCS[0].startswith(
        "scriptum(script=None, *, timeout=None, env=True, critical=False, serial=False, repeat=None, "
        "min_pass=None, advisory=False): "
    )


@pytest.mark.parametrize(
    ("decorators", "problem"),
    [
        (
            "@pytest.mark.scriptum('s', 't')",
            "scriptum: takes at most one positional argument (script), got 2",
        ),
        (
            "@pytest.mark.scriptum('s', script='t')",
            "scriptum: script given both positionally and as a keyword",
        ),
        (
            "@pytest.mark.smoke_expect(1, outptu=2, output=3)",
            "smoke_expect: unknown argument 'outptu' "
            "(accepted: output, match, schema, approx, regex, status)",
        ),
        (
            "@pytest.mark.smoke_cases('cases/path.json')",
            "smoke_cases: case file cases/path.json: unknown key 'path' (accepted: id, input, expect)",
        ),
    ],
    ids=["two-positionals", "script-twice", "unknown-before-twice", "case-path-is-not-a-key"],
)
def test_call_errors_are_named_in_the_authors_terms(
    suite: pytest.Pytester, decorators: str, problem: str
) -> None:
    """A marker call that does not bind to its record's signature: the key, never Python's text."""
    write_json(suite.path / "cases" / "path.json", {"id": "x", "input": 1, "path": "elsewhere.json"})
    source = f"import pytest\n\n@pytest.mark.smoke_input(1)\n{decorators}\ndef test_totals():\n    pass\n"
    if "smoke_cases" in decorators:
        source = source.replace("@pytest.mark.smoke_input(1)\n", "")
    suite.makepyfile(test_smoke=source)
    result = suite.runpytest(*ISOLATE)
    assert_clean_collection_error(result, "test_totals", *problem.split(": ", 1))


def test_spec_is_plain_data_without_pytest_or_jsonschema(pytester: pytest.Pytester) -> None:
    """The matchers and the evidence writers read the records without loading the plugin."""
    script = (
        "import sys, pytest_scriptum.spec\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest', 'jsonschema'))\n"
        "own = 'pytest_scriptum.spec'\n"
        "plugin = sorted(m for m in sys.modules if m.startswith('pytest_scriptum.') and m != own)\n"
        "print(loaded, plugin)\n"
    )
    result = pytester.run(sys.executable, "-c", script)
    assert result.ret == 0, result.stderr.str()
    assert result.stdout.lines[-1] == "[] []"


def test_item_markers_pickle(suite: pytest.Pytester) -> None:
    items = collect(
        suite,
        """
        import pytest

        @pytest.mark.scriptum(timeout=3)
        @pytest.mark.smoke_input({"a": [1]})
        @pytest.mark.smoke_expect({"a": [1.0]}, approx=0.5, regex={"b": "x"})
        def test_a():
            pass
        """,
    )
    parsed = item_markers(items["test_a"])
    assert pickle.loads(pickle.dumps(parsed)) == parsed
