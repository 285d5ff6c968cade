"""Property: whatever a suite author writes in the markers or the case files, a real session
ends each test in a clean collection error (naming the test and the marker) or a pass/fail —
never an INTERNALERROR, a setup error or a traceback out of the plugin.

Hypothesis generates a batch of test files per example and one inner session (inline_run) runs
the whole batch against the shared server: a session per marker would cost seconds each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import Platform
from kit.seeds.doubles import SCRIPT

BATCH = 25

_keys = st.text(alphabet="xyzab", min_size=1, max_size=2)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3)),
    max_leaves=8,
)
# Source fragments no JSON value can produce: non-JSON Python values and @file references.
_odd = st.sampled_from(
    [
        "float('nan')",
        "float('inf')",
        "{1, 2}",
        "b'bytes'",
        "object()",
        "(1, 2)",
        "'@data.json'",
        "'@bad.json'",
        "'@missing.json'",
        "'@../outside.json'",
        "'@@literal'",
        "'@'",
        "'declared'",
        "{'x': 0}",
        "-1",
        "0",
        "1e9",
        "'subset'",
        "'exact'",
        "'FAILED'",
        "'SUCCEEDED'",
        "{'doubled': '[0-9]+'}",
        "{'doubled': '('}",
        "{'doubled.0.x': 0.5}",
        "{'type': 'object'}",
        "{'type': 'nope'}",
    ]
)
_value = st.one_of(_json.map(repr), _odd)

# Mostly plausible arguments (so sessions really run threads and check outputs), sometimes anything.
_ints = st.integers(min_value=-50, max_value=50)
_GOOD: dict[str, st.SearchStrategy[str]] = {
    "timeout": st.floats(min_value=0.5, max_value=30).map(repr),
    "env": st.booleans().map(repr),
    "critical": st.booleans().map(repr),
    "serial": st.booleans().map(repr),
    "input": _ints.map(lambda x: repr({"x": x})),
    "output": _ints.map(lambda x: repr({"doubled": x})),
    "match": st.sampled_from(["'subset'", "'exact'"]),
    "schema": st.sampled_from(["{'type': 'object'}", "'declared'", "{'required': ['doubled']}"]),
    "approx": st.sampled_from(["0.5", "{'doubled': 2}"]),
    "regex": st.sampled_from(["{'version': '3'}", "{'doubled': '[0-9]+'}"]),
    "status": st.sampled_from(["'COMPLETED'", "'FAILED'", "'PAUSED'", "'CANCELLED'", "'PENDING'"]),
}
_SCRIPTUM_KW = ["timeout", "env", "critical", "serial", "script"]
_EXPECT_KW = ["output", "match", "schema", "approx", "regex", "status"]


def _keywords(draw: st.DrawFn, names: list[str]) -> dict[str, str]:
    keywords = {k: _arg(draw, k) for k in draw(st.lists(st.sampled_from(names), unique=True))}
    if not draw(st.integers(0, 9)):
        keywords["bogus"] = draw(_value)  # an unknown keyword, now and then
    return keywords


def _arg(draw: st.DrawFn, key: str) -> str:
    good = _GOOD.get(key)
    if good is not None and draw(st.integers(0, 3)):
        return draw(good)
    return draw(_value)


def _call(name: str, positional: list[str], keywords: dict[str, str]) -> str:
    args = [*positional, *(f"{k}={v}" for k, v in keywords.items())]
    return f"@pytest.mark.{name}({', '.join(args)})"


@st.composite
def marker_test(draw: st.DrawFn, index: int) -> str:
    """The decorators and body of one test function; every marker optional, arguments arbitrary."""
    lines: list[str] = []
    if draw(st.booleans()):
        keywords = _keywords(draw, _SCRIPTUM_KW)
        if "script" in keywords:
            keywords["script"] = repr(SCRIPT)  # another script is a session-wide usage error by design
        lines.append(_call("scriptum", draw(st.sampled_from([[], [repr(SCRIPT)]])), keywords))
    if draw(st.integers(0, 4)):
        count = {0: 0, 1: 2}.get(draw(st.integers(0, 9)), 1)  # now and then none, or two
        lines.append(_call("smoke_input", [_arg(draw, "input") for _ in range(count)], {}))
    if draw(st.booleans()):
        keywords = _keywords(draw, _EXPECT_KW)
        if "output" not in keywords and draw(st.booleans()):
            lines.append(_call("smoke_expect", [_arg(draw, "output")], keywords))
        else:
            lines.append(_call("smoke_expect", [], keywords))
    return "\n".join([*lines, f"def test_ex_{index}():", "    pass", ""])


_plausible_case = st.fixed_dictionaries(
    {"id": st.text(alphabet="abcdef", min_size=1, max_size=4), "input": st.builds(dict, x=_ints)},
    optional={"expect": st.fixed_dictionaries({}, optional={"output": st.builds(dict, doubled=_ints)})},
).map(json.dumps)
_case_content = st.one_of(
    _plausible_case,
    _plausible_case,
    st.text(max_size=20),
    _json.map(json.dumps),
    st.fixed_dictionaries(
        {"id": st.one_of(st.text(max_size=6), _json), "input": _json},
        optional={
            "expect": st.one_of(_json, st.dictionaries(st.sampled_from([*_EXPECT_KW, "bogus"]), _json))
        },
    ).map(json.dumps),
)


@st.composite
def case_test(draw: st.DrawFn, index: int) -> tuple[str, list[str]]:
    """A smoke_cases test and the contents of its case files."""
    source = f"@pytest.mark.smoke_cases('cases_{index}/*.json')\ndef test_ex_{index}():\n    pass\n"
    return source, draw(st.lists(_case_content, min_size=1, max_size=3))


@st.composite
def batch(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, list[str]]]]:
    markers = [draw(marker_test(i)) for i in range(BATCH)]
    cases = [draw(case_test(BATCH + i)) for i in range(BATCH // 2)]
    return markers, cases


def _write_batch(root: Path, markers: list[str], cases: list[tuple[str, list[str]]]) -> list[str]:
    root.mkdir()
    (root / "data.json").write_text('{"x": 1}')
    (root / "bad.json").write_text("{not json")
    names = []
    for index, source in enumerate([*markers, *(source for source, _ in cases)]):
        name = f"test_ex_{index}"
        (root / f"{name}.py").write_text(
            f"import pytest\n\npytestmark = pytest.mark.scriptum({SCRIPT!r})\n\n{source}"
        )
        names.append(name)
    for offset, (_, contents) in enumerate(cases):
        folder = root / f"cases_{BATCH + offset}"
        folder.mkdir()
        for number, content in enumerate(contents):
            (folder / f"case{number}.json").write_text(content)
    return names


_round = {"n": 0}


@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(batch())
def test_any_marker_or_case_file_ends_cleanly(
    pytester: pytest.Pytester,
    platform: Platform,
    generated: tuple[list[str], list[tuple[str, list[str]]]],
) -> None:
    _round["n"] += 1
    root = pytester.path / f"round{_round['n']}"
    names = _write_batch(root, *generated)
    recorder = pytester.inline_run(str(root), *platform.args("--continue-on-collection-errors", version=3))
    assert recorder.getcalls("pytest_internalerror") == []
    assert recorder.ret != pytest.ExitCode.INTERNAL_ERROR
    collect = {Path(r.nodeid).stem: r for r in recorder.getreports("pytest_collectreport") if r.nodeid}
    phases: dict[str, dict[str, Any]] = {}
    for report in recorder.getreports("pytest_runtest_logreport"):
        phases.setdefault(Path(report.nodeid.split("::")[0]).stem, {})[report.when] = report
    for name in names:
        module = collect.get(name)
        if module is not None and module.failed:
            text = module.longreprtext
            assert name in text and "@pytest.mark." in text, text  # names the test and the marker
            assert "Traceback" not in text and "pytest_scriptum/" not in text, text
            continue
        runs = phases.get(name)
        assert runs, f"{name} neither failed collection nor ran"
        setup = runs["setup"]
        assert setup.passed, f"{name}: setup error instead of pass/fail:\n{setup.longreprtext}"
        assert runs["call"].outcome in ("passed", "failed"), name
        assert "pytest_scriptum/" not in runs["call"].longreprtext, runs["call"].longreprtext


REGRESSIONS = """
import pytest

pytestmark = pytest.mark.scriptum("calc")


@pytest.mark.scriptum("calc", timeout=1e9)
@pytest.mark.smoke_input({"x": 1})
def test_past_the_platforms_deadline_limit():
    pass
"""


def test_found_by_fuzzing_a_timeout_over_the_platform_limit(
    pytester: pytest.Pytester, platform: Platform
) -> None:
    # Was accepted, then every run died in the client's argument check: a traceback, not a message.
    pytester.makepyfile(test_regressions=REGRESSIONS)
    result = pytester.runpytest(*platform.args(version=3))
    result.stdout.fnmatch_lines(
        [
            "*test_past_the_platforms_deadline_limit (test_regressions.py): @pytest.mark.scriptum: "
            "timeout must be at most 3600 seconds*"
        ]
    )
    assert "Traceback" not in result.stdout.str() and "ValueError" not in result.stdout.str()
    assert platform.stats().runs_started == 0

    option = pytester.runpytest(*platform.args("--scriptum-timeout=5000", version=3))
    assert option.ret == pytest.ExitCode.USAGE_ERROR
    # The option's own bound (the wording is the options table's).
    assert "--scriptum-timeout" in option.stderr.str() and "3600" in option.stderr.str()
