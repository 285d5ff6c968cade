"""One notation for paths into an output, in and out: JSON Pointer (RFC 6901). The ``approx`` and
``regex`` keys are read as pointers (the dotted form of earlier releases too), kept as pointers,
and every mismatch names its place by the same pointer."""

from __future__ import annotations

import pytest

from pytest_scriptum.expect import check, compile_pattern, format_failure, render_path
from pytest_scriptum.spec import Expectation, parse_path, pointer


@pytest.mark.parametrize(
    ("written", "segments"),
    [
        ("", ()),
        ("/total", ("total",)),
        ("/lines/0/sku", ("lines", "0", "sku")),
        ("/a~1b/c~0d", ("a/b", "c~d")),
        ("/odd key/", ("odd key", "")),
        ("/v1.2/x", ("v1.2", "x")),  # a key with a dot: only a pointer reaches it
        ("lines.0.sku", ("lines", "0", "sku")),  # the dotted form, still read
    ],
)
def test_paths_are_read_as_json_pointers(written: str, segments: tuple[str, ...]) -> None:
    assert parse_path(written) == segments


@pytest.mark.parametrize("bad", ["/a~2", "/a~", "a..b", ".a", 7, None])
def test_malformed_paths_are_refused_with_the_notation_explained(bad: object) -> None:
    with pytest.raises(ValueError, match="paths are JSON Pointers"):
        parse_path(bad)


@pytest.mark.parametrize("segments", [(), ("a",), ("a/b", 0, "~"), ("", "x y", 12)])
def test_a_pointer_round_trips(segments: tuple[str | int, ...]) -> None:
    assert parse_path(pointer(segments)) == tuple(str(s) for s in segments)
    assert render_path(segments) == pointer(segments)


def test_what_goes_in_is_what_comes_out() -> None:
    """The pointer an author writes in ``regex``/``approx`` is the one the failure text prints."""
    expectation = Expectation(
        output={"lines": [{"amount": 1.0}], "v1.2": {"x": "a"}},
        approx={"/lines/0/amount": 0.01},
        regex={"/v1.2/x": compile_pattern("[0-9]+"), "/missing~1key": compile_pattern(".*")},
    )
    output = {"lines": [{"amount": 1.5}], "v1.2": {"x": "a"}}
    found = check(expectation, status="COMPLETED", output=output, error="", declared_schema=None)
    assert [m.path for m in found] == ["/lines/0/amount", "/missing~1key", "/v1.2/x"]
    text = format_failure(found, script="calc", version=2, thread_id="t-1")
    assert "  /lines/0/amount: expected 1.0 ± 0.01, got 1.5" in text
    assert "  /v1.2/x: expected a string matching '[0-9]+', got 'a'" in text
    whole = check(Expectation(output=[1]), status="COMPLETED", output={}, error="", declared_schema=None)
    assert [m.path for m in whole] == [""]
    assert "  (whole output): expected a list of 1 item, got an object" in format_failure(
        whole, script="calc", version=2, thread_id="t-1"
    )
