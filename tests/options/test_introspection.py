"""What ``pytest --markers`` and ``pytest --fixtures`` tell a user, and ``--strict-markers`` safety.

(``pytest --help`` listing every option is covered in test_options.py.)
"""

from __future__ import annotations

import pytest

MARKER_SIGNATURES = (
    "@pytest.mark.scriptum(script=None, *, timeout=None, env=True, critical=False, serial=False, "
    "repeat=None, min_pass=None, advisory=False): *",
    "@pytest.mark.smoke_input(value): *",
    "@pytest.mark.smoke_expect(output=None, *, match='subset', schema=None, approx=None, regex=None, "
    "status='COMPLETED'): *",
    "@pytest.mark.smoke_cases(glob): *",
)

# fixture -> (scope shown by --fixtures, first line of its docstring)
FIXTURES = {
    "scriptum_client": ("session scope", "The session's authenticated Scriptum client *"),
    "scriptum_http": ("session scope", "An httpx.Client on the HTTP gateway with the authorization *"),
    "scriptum_version": ("session scope", "The candidate version (int) every smoke thread is pinned to *"),
    "scriptum_runner": (
        "session scope",
        "Pinned runner: ``run(input, *, script=None, timeout=None) -> ThreadResult``.",
    ),
    "smoke_thread": ("", "The ThreadResult of this test's marker-declared run *"),
}


def test_markers_lists_the_four_markers_with_signatures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    for signature in MARKER_SIGNATURES:
        result.stdout.fnmatch_lines([signature])
    assert result.ret == 0


def test_fixtures_lists_the_five_fixtures_with_docstrings(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*- fixtures defined from pytest_scriptum.plugin -*"])
    for name, (scope, doc) in FIXTURES.items():
        scope_part = f" [[]{scope}[]]" if scope else ""
        result.stdout.fnmatch_lines(
            [f"{name}{scope_part} -- *pytest_scriptum/plugin.py:*", f"    {doc}"], consecutive=True
        )
    assert "_scriptum_smoke_run" not in result.stdout.str()  # the private autouse fixture stays hidden
    assert result.ret == 0


def test_strict_markers_accepts_the_four_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_all_markers="""
import pytest

pytestmark = pytest.mark.scriptum("shop", timeout=5, env=True, critical=False, serial=False)


@pytest.mark.smoke_input({"kind": "small"})
@pytest.mark.smoke_expect({"n": 1}, match="subset", status="COMPLETED")
def test_marked():
    pass


@pytest.mark.smoke_cases("cases/*.json")
def test_cases():
    pass
"""
    )
    pytester.mkdir("cases").joinpath("one.json").write_text('{"id": "one", "input": {"kind": "small"}}')
    result = pytester.runpytest(
        "--strict-markers", "--co", "-q", "-p", "no:cacheprovider", "--scriptum-version=3"
    )
    result.stdout.fnmatch_lines(
        ["test_all_markers.py::test_marked", "test_all_markers.py::test_cases[[]one[]]"]
    )
    assert result.ret == 0
