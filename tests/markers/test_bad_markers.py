"""Bad marker arguments through the installed plugin: collection errors that name the test, the
marker and the file, with no traceback from plugin internals and never an INTERNALERROR.

A representative table (the parser itself is covered case by case in tests/markers/test_markers.py).
All cases sit in one inner session, one test file each, next to a good file whose test still
collects; an unregistered marker shows that ``--strict-markers`` is on in that session.
"""

from __future__ import annotations

import pytest
from kit import write_smoke_ini
from kit.seeds.shop import SHOP, write_shop_seed

# file stem -> (test source below the imports, test name, marker, problem as an fnmatch pattern)
CASES: dict[str, tuple[str, str, str, str]] = {
    "test_bad_unknown_kwarg": (
        '@pytest.mark.smoke_input({"kind": "small"})\n'
        '@pytest.mark.smoke_expect({"n": 1}, matches="exact")\n'
        "def test_unknown_kwarg():\n    pass\n",
        "test_unknown_kwarg",
        "smoke_expect",
        "unknown argument 'matches' (accepted: output, match, schema, approx, regex, status)",
    ),
    "test_bad_scriptum_kwarg": (
        '@pytest.mark.scriptum("shop", retries=3)\n'
        '@pytest.mark.smoke_input({"kind": "small"})\n'
        "def test_scriptum_kwarg():\n    pass\n",
        "test_scriptum_kwarg",
        "scriptum",
        "unknown argument 'retries' (accepted: script, timeout, env, critical, serial, repeat, min_pass, "
        "advisory)",
    ),
    "test_bad_missing_file": (
        '@pytest.mark.smoke_input("@inputs/nope.json")\ndef test_missing_file():\n    pass\n',
        "test_missing_file",
        "smoke_input",
        "input file 'inputs/nope.json' not found (inputs/nope.json)",
    ),
    "test_bad_invalid_json": (
        '@pytest.mark.smoke_input("@broken.json")\ndef test_invalid_json():\n    pass\n',
        "test_invalid_json",
        "smoke_input",
        "input file broken.json is not valid JSON: Expecting * at line 1 column *",
    ),
    "test_bad_invalid_schema": (
        '@pytest.mark.smoke_input({"kind": "full"})\n'
        '@pytest.mark.smoke_expect(schema={"type": "nonsense"})\n'
        "def test_invalid_schema():\n    pass\n",
        "test_invalid_schema",
        "smoke_expect",
        "schema: not a valid JSON Schema: *",
    ),
    "test_bad_regex": (
        '@pytest.mark.smoke_input({"kind": "full"})\n'
        '@pytest.mark.smoke_expect(regex={"id": "INV-(["})\n'
        "def test_bad_regex():\n    pass\n",
        "test_bad_regex",
        "smoke_expect",
        "bad regex for '/id': *",
    ),
    "test_bad_path": (
        '@pytest.mark.smoke_input({"kind": "full"})\n'
        '@pytest.mark.smoke_expect(regex={"customer..city": "P.*"})\n'
        "def test_bad_path():\n    pass\n",
        "test_bad_path",
        "smoke_expect",
        "regex: bad path 'customer..city': empty segment*",
    ),
    "test_bad_approx_path": (
        '@pytest.mark.smoke_input({"kind": "full"})\n'
        '@pytest.mark.smoke_expect({"total": 10.0}, approx={"totl": 0.1})\n'
        "def test_bad_approx_path():\n    pass\n",
        "test_bad_approx_path",
        "smoke_expect",
        "approx path '/totl' is not in the expected output",
    ),
    "test_bad_empty_glob": (
        '@pytest.mark.smoke_cases("no_cases/*.json")\ndef test_empty_glob():\n    pass\n',
        "test_empty_glob",
        "smoke_cases",
        "glob 'no_cases/*.json' matched no files in *",
    ),
}

GOOD = """
import pytest


@pytest.mark.smoke_input({"kind": "small"})
@pytest.mark.smoke_expect({"n": 1})
def test_good():
    pass
"""

UNREGISTERED = """
import pytest


@pytest.mark.smoke_inputs({"kind": "small"})
def test_typo_in_marker_name():
    pass
"""


def test_bad_markers_are_collection_errors_naming_test_marker_and_file(pytester: pytest.Pytester) -> None:
    write_shop_seed(pytester.path / "seed")
    write_smoke_ini(pytester, script=SHOP, scriptum_version="3")
    pytester.makepyfile(
        test_good_marker=GOOD,
        test_unregistered_marker=UNREGISTERED,
        **{stem: "import pytest\n\n\n" + source for stem, (source, _, _, _) in CASES.items()},
    )
    (pytester.path / "broken.json").write_text('{"kind": ')
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")

    errors = len(CASES) + 1
    result.assert_outcomes(errors=errors)
    result.stdout.fnmatch_lines([f"*Interrupted: {errors} errors during collection*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED
    for stem, (_, test, marker, problem) in CASES.items():
        result.stdout.fnmatch_lines(
            [
                f"*_ ERROR collecting {stem}.py _*",
                f"{stem}.py:4: {test} ({stem}.py): @pytest.mark.{marker}: {problem}",
            ]
        )
    result.stdout.fnmatch_lines(["*'smoke_inputs' not found in `markers` configuration option*"])
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    assert "Traceback" not in output
    assert "pytest_scriptum" not in output  # no frame of the plugin's own code
    assert "test_good_marker.py" not in output  # the good file collected cleanly


MANY_MISTAKES = """
import pytest


@pytest.mark.smoke_input({"kind": "small"})
@pytest.mark.smoke_expect({"n": 1}, matches="exact")
def test_one():
    pass


def test_plain():
    pass


@pytest.mark.scriptum("shop", retries=3)
@pytest.mark.smoke_input({"kind": "small"})
def test_two():
    pass


class TestGroup:
    @pytest.mark.smoke_input({"kind": "full"})
    @pytest.mark.smoke_expect(regex={"id": "INV-(["})
    def test_three(self):
        pass
"""


def test_every_mistake_of_a_module_in_one_collection_run_with_its_line(pytester: pytest.Pytester) -> None:
    write_shop_seed(pytester.path / "seed")
    write_smoke_ini(pytester, script=SHOP, scriptum_version="3")
    pytester.makepyfile(test_many=MANY_MISTAKES, test_good_marker=GOOD)
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(errors=1)  # one collection error for the file, listing all three
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR collecting test_many.py _*",
            "3 marker mistakes in test_many.py:",
            "test_many.py:4: test_one (test_many.py): @pytest.mark.smoke_expect: unknown argument 'matches'*",
            "test_many.py:14: test_two (test_many.py): @pytest.mark.scriptum: unknown argument 'retries'*",
            "test_many.py:21: TestGroup::test_three (test_many.py): @pytest.mark.smoke_expect: bad regex*",
        ]
    )
    output = result.stdout.str()
    assert "test_plain" not in output.split("short test summary")[0].split("ERROR collecting")[1]
    assert "Traceback" not in output and "INTERNALERROR" not in output
