"""Property tests: any marker argument or case-file content gives a valid spec or a MarkerError.

They call the same checking boundary the node-level functions use (``checked`` with the
marker parsers of ``pytest_scriptum.markers.arguments`` and ``.cases``), on real ``pytest.Mark``
objects, so no pytest session is needed per example.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from jsonschema import validators as jsonschema_validators

from pytest_scriptum.expect import check, compile_pattern
from pytest_scriptum.markers import (
    ACCEPTED_EXPECT_KEYS,
    JSON_NULL,
    STATUSES,
    UNSET,
    BoundedPattern,
    Expectation,
    MarkerError,
    ScriptumOptions,
    SmokeCase,
    parse_dotted_path,
    parse_path,
    pointer,
)
from pytest_scriptum.markers.arguments import expectation_from, glob_from, input_from, options_from
from pytest_scriptum.markers.cases import load_cases
from pytest_scriptum.markers.problems import Where, checked

# The markers are registered by the plugin, which these tests do not need to load.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnknownMarkWarning")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test-file directory with the files that ``@refs`` in the examples may point at."""
    root = tmp_path_factory.mktemp("refs")
    (root / "ok.json").write_text('{"total": 1.5, "lines": [{"sku": "A"}]}', encoding="utf-8")
    (root / "null.json").write_text("null", encoding="utf-8")
    (root / "bad.json").write_text("{'single': 'quotes'}", encoding="utf-8")
    (root / "nan.json").write_text("[NaN]", encoding="utf-8")
    (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    (root / "latin1.json").write_bytes(b'"\xe9"')
    (root / "schema.json").write_text('{"type": "object"}', encoding="utf-8")
    (root / "badschema.json").write_text('{"type": 5}', encoding="utf-8")
    (root / "dir").mkdir()
    return root


def where(base: Path) -> Where:
    return Where(test="test_x", file="smoke/test_x.py", base_dir=base, rootpath=base)


REFS = [
    "@ok.json",
    "@null.json",
    "@bad.json",
    "@nan.json",
    "@deep.json",
    "@latin1.json",
    "@schema.json",
    "@badschema.json",
    "@missing.json",
    "@dir",
    "@",
    "@@ok.json",
    "@../nope.json",
    "@a\x00b",
    "declared",
]


class Weird:
    def __repr__(self) -> str:
        raise RuntimeError("a repr that breaks")


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats()  # includes NaN and infinities
    | st.text(max_size=8)
    | st.sampled_from(REFS)
    | st.sampled_from(["subset", "exact", *STATUSES, "(", "[a-z]+", "a..b", ".a", "lines.0.price"])
    | st.binary(max_size=4)
    | st.builds(Weird)
    | st.just(JSON_NULL)
    | st.just({1, 2})
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(
            st.text(max_size=6) | st.sampled_from(["type", "total", "lines", "0"]), children, max_size=3
        )
        | st.dictionaries(st.integers(), children, max_size=2)
    ),
    max_leaves=12,
)
_expect_keys = st.sampled_from([*ACCEPTED_EXPECT_KEYS, "outptu", "approx", "regex"]) | st.text(max_size=6)
_plain_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


def _plausible_expect(refs: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments close to valid ones, so that valid expectations are generated often too."""
    return st.fixed_dictionaries(
        {},
        optional={
            "output": _plain_json | st.sampled_from(refs) | st.just({"total": 1.5, "lines": [{"sku": "A"}]}),
            "match": st.sampled_from(["subset", "exact", "fuzzy"]),
            "schema": st.sampled_from(
                [None, "declared", {"type": "object"}, {"type": 5}, {"$schema": 3}, "object", *refs]
            ),
            "approx": st.floats(min_value=-1, max_value=10)
            | st.sampled_from([{"total": 0.1}, {"lines.0.sku": 0.1}, {"lines..x": 1}, {"total": -1}, True]),
            "regex": st.sampled_from(
                [{"total": "[0-9.]+"}, {"lines.0.sku": "[A-Z]"}, {"a": "("}, {"": "x"}, {"a": 1}, ["x"]]
            ),
            "status": st.sampled_from([*STATUSES, "OK", None]),
        },
    )


def assert_json(value: Any) -> None:
    """``value`` is plain JSON data (serializable without NaN and round-tripping)."""
    event("valid JSON value")
    assert json.loads(json.dumps(value, allow_nan=False)) == value


def assert_valid_expectation(expect: Expectation) -> None:
    event("valid expectation")
    if expect.output is not UNSET:
        assert_json(expect.output)
    assert expect.match in ("subset", "exact")
    if isinstance(expect.schema, dict):
        jsonschema_validators.validator_for(expect.schema).check_schema(expect.schema)
    else:
        assert expect.schema in (None, "declared")
    if isinstance(expect.approx, dict):
        assert expect.output is not UNSET
        for path, tolerance in expect.approx.items():
            parse_dotted_path(path)
            assert math.isfinite(tolerance) and tolerance >= 0
    elif expect.approx is not None:
        assert isinstance(expect.approx, float) and math.isfinite(expect.approx) and expect.approx >= 0
    for path, pattern in (expect.regex or {}).items():
        parse_dotted_path(path)
        assert isinstance(pattern, BoundedPattern) and pattern == compile_pattern(pattern.pattern)
    assert expect.status in STATUSES
    # a valid expectation can be checked against any output without raising
    for output in (None, {"total": 1.5, "lines": [{"sku": "A"}]}, [1, "x"], "text"):
        check(expect, status=expect.status, output=output, error="", declared_schema={"type": "object"})


def assert_marker_error(error: MarkerError, marker: str) -> None:
    event("MarkerError")
    assert str(error).startswith(f"test_x (smoke/test_x.py): @pytest.mark.{marker}: ")
    assert error.problem


@settings(max_examples=300, deadline=None)
@given(
    args=st.lists(_values, max_size=2),
    kwargs=st.dictionaries(_expect_keys, _values, max_size=4) | _plausible_expect(REFS),
)
def test_smoke_expect_arguments(base: Path, args: list[Any], kwargs: dict[str, Any]) -> None:
    mark = pytest.mark.smoke_expect.with_args(*args, **kwargs).mark
    try:
        expect = checked(where(base), "smoke_expect", expectation_from, mark, where(base))
    except MarkerError as error:
        assert_marker_error(error, "smoke_expect")
    else:
        assert_valid_expectation(expect)


@settings(max_examples=300, deadline=None)
@given(
    args=st.lists(_values, min_size=1, max_size=1) | st.lists(_values, max_size=2),
    kwargs=st.just({}) | st.dictionaries(st.text(max_size=5), _values, max_size=1),
)
def test_smoke_input_arguments(base: Path, args: list[Any], kwargs: dict[str, Any]) -> None:
    mark = pytest.mark.smoke_input.with_args(*args, **kwargs).mark
    try:
        value = checked(where(base), "smoke_input", input_from, mark, where(base))
    except MarkerError as error:
        assert_marker_error(error, "smoke_input")
    else:
        assert_json(value)


_scriptum_keys = st.sampled_from(["script", "timeout", "env", "critical", "serial", "retries"])


_plausible_scriptum = st.fixed_dictionaries(
    {},
    optional={
        "timeout": st.none() | st.integers(-1, 100) | st.floats() | st.booleans(),
        "env": st.booleans() | st.none(),
        "critical": st.booleans() | st.sampled_from(["yes", 1]),
        "serial": st.booleans(),
        "script": st.text(max_size=5) | st.none() | st.integers(),
    },
)


@settings(max_examples=200, deadline=None)
@given(
    args=st.lists(_values, max_size=2) | st.lists(st.text(max_size=8), max_size=1),
    kwargs=st.dictionaries(_scriptum_keys, _values, max_size=5) | _plausible_scriptum,
)
def test_scriptum_arguments(base: Path, args: list[Any], kwargs: dict[str, Any]) -> None:
    mark = pytest.mark.scriptum.with_args(*args, **kwargs).mark
    try:
        options = checked(where(base), "scriptum", options_from, mark)
    except MarkerError as error:
        assert_marker_error(error, "scriptum")
    else:
        event("valid options")
        assert isinstance(options, ScriptumOptions)
        assert options.script is None or (isinstance(options.script, str) and options.script)
        assert options.timeout is None or (math.isfinite(options.timeout) and options.timeout > 0)
        assert all(isinstance(flag, bool) for flag in (options.env, options.critical, options.serial))


# --- case files ----------------------------------------------------------------------------------

CASE_REFS = ["@refs/ok.json", "@refs/null.json", "@refs/schema.json", "@refs/bad.json", "@nope.json", "@@x"]
_case_objects = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["a", "b", "", " ", "same"]) | _plain_json,
        "input": _plain_json | st.sampled_from(CASE_REFS),
        "expect": _plausible_expect(CASE_REFS)
        | st.dictionaries(_expect_keys, _plain_json, max_size=3)
        | _plain_json,
        "extra": _plain_json,
    },
)
_valid_cases = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=4), "input": _plain_json | st.sampled_from(CASE_REFS)},
    optional={"expect": _plausible_expect(CASE_REFS)},
)
_case_texts = (
    _valid_cases.map(json.dumps)
    | _case_objects.map(json.dumps)
    | _plain_json.map(json.dumps)
    | st.text(max_size=30)
    | st.sampled_from(['{"id": "a", "input": NaN}', '{"id": "a", "id": "b", "input": 1}', "[" * 5000])
)


@settings(max_examples=300, deadline=None)
@given(
    files=st.lists(_case_texts | st.binary(max_size=20), min_size=1, max_size=3)
    | st.lists(_valid_cases.map(json.dumps), min_size=1, max_size=2),
    glob=st.sampled_from(["cases/*.json", "cases/0.json"])
    | st.sampled_from(["none/*.json", "cases/[", "**/*.json", "/abs/*.json", "", "../*"]),
)
def test_case_files(base: Path, files: list[str | bytes], glob: str) -> None:
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        test_dir = Path(tmp)
        cases_dir = test_dir / "cases"
        cases_dir.mkdir()
        (cases_dir / "refs").mkdir()
        for ref in ("ok.json", "null.json", "bad.json", "schema.json"):
            (cases_dir / "refs" / ref).write_bytes((base / ref).read_bytes())
        for index, content in enumerate(files):
            path = cases_dir / f"{index}.json"
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        here = Where(test="test_x", file="smoke/test_x.py", base_dir=test_dir, rootpath=test_dir)
        mark = pytest.mark.smoke_cases.with_args(glob).mark
        try:
            parsed = checked(here, "smoke_cases", glob_from, mark)
            cases = checked(here, "smoke_cases", load_cases, parsed, here, Expectation())
        except MarkerError as error:
            assert_marker_error(error, "smoke_cases")
        else:
            assert cases
            assert len({case.id for case in cases}) == len(cases)
            for case in cases:
                assert isinstance(case, SmokeCase)
                assert isinstance(case.id, str) and case.id.strip()
                assert_json(case.input)
                assert_valid_expectation(case.expect)


@settings(deadline=None)
@given(st.text(max_size=12) | st.text(alphabet="/~01a.", max_size=8) | st.integers() | st.none())
def test_paths_parse_or_raise_value_error(path: object) -> None:
    """Any value is a JSON Pointer, a dotted path, or a ValueError that says "path"; a parsed path
    prints back as the pointer it is (the one notation of messages), or as its dotted source."""
    try:
        segments = parse_path(path)
    except ValueError as error:
        assert "path" in str(error)
    else:
        assert isinstance(path, str)
        if path == "" or path.startswith("/"):
            assert pointer(segments) == path
        else:
            assert ".".join(segments) == path and all(segments)
