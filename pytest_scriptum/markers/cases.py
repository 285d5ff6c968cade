"""``smoke_cases`` files: a glob -> one :class:`~pytest_scriptum.spec.SmokeCase` per matching file.

Each file is a JSON object whose keys are those of :class:`~pytest_scriptum.spec.SmokeCase` but
``path`` (bound to its signature, so that signature is the one list of them): ``id`` (required,
a non-empty string, unique across the glob), ``input`` (required; ``null`` is a valid input) and
``expect`` (optional, an object with :class:`~pytest_scriptum.spec.Expectation`'s keys; when
absent the test's closest ``smoke_expect`` applies). ``@refs`` in a case file are relative to
the case file. The plugin parametrizes a ``smoke_cases`` test on :data:`CASE_PARAM`, one case each.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Final

import pytest

from pytest_scriptum.markers.arguments import bind, expectation, keys_of
from pytest_scriptum.markers.problems import Invalid, Where, short
from pytest_scriptum.markers.values import parse_json_text, value_or_file
from pytest_scriptum.spec import Expectation, SmokeCase

__all__ = ["CASE_PARAM", "case_of", "load_cases"]

CASE_PARAM: Final = "_scriptum_case"
"""The argument name the plugin parametrizes ``smoke_cases`` tests on (values: :class:`SmokeCase`)."""


def load_cases(glob: str, where: Where, fallback: Expectation) -> list[SmokeCase]:
    """The cases of every file matching ``glob`` (relative to ``where.base_dir``), in path order.

    ``fallback`` is the expectation of a case without ``expect``. Raises Invalid for a glob that
    matches no file, a bad case file, or a case id used twice.
    """
    try:
        paths = sorted(path for path in where.base_dir.glob(glob) if path.is_file())
    except (ValueError, NotImplementedError, OSError) as exc:
        raise Invalid(f"bad glob {glob!r}: {exc}") from None
    if not paths:
        raise Invalid(f"glob {glob!r} matched no files in {where.show(where.base_dir)}")
    cases: list[SmokeCase] = []
    seen: dict[str, Path] = {}
    for path in paths:
        label = f"case file {where.show(path)}"
        try:
            case = _load_case(path, where, fallback, label)
        except Invalid as exc:
            problem = str(exc)
            raise Invalid(problem if problem.startswith(label) else f"{label}: {problem}") from None
        if case.id in seen:
            first = where.show(seen[case.id])
            raise Invalid(f"duplicate case id {case.id!r} in {first} and {where.show(path)}")
        seen[case.id] = path
        cases.append(case)
    return cases


def _load_case(path: Path, where: Where, fallback: Expectation, label: str) -> SmokeCase:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(f"{label} is not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise Invalid(f"cannot read {label}: {exc}") from None
    data = parse_json_text(text, label)
    supplied = {"path": path}  # the one parameter of SmokeCase that is not a key of the file
    if not isinstance(data, dict):
        keys = ", ".join(keys_of(SmokeCase, supplied=supplied))
        raise Invalid(f"must be a JSON object with keys {keys}; got {short(data)}")
    values = bind(SmokeCase, (), data, what="key", supplied=supplied)
    case_id = values.get("id")
    if not isinstance(case_id, str) or not case_id.strip():
        raise Invalid(f"'id' must be a non-empty string, got {short(case_id)}")
    if "input" not in values:
        raise Invalid("'input' is required (write \"input\": null for a null input)")
    case_where = replace(where, base_dir=path.parent)
    case_input = value_or_file(values["input"], case_where, "input")
    if "expect" not in values:
        return SmokeCase(id=case_id, input=case_input, expect=fallback, path=path)
    raw_expect = values["expect"]
    if not isinstance(raw_expect, dict):
        raise Invalid(f"'expect' must be an object (smoke_expect's keys), got {short(raw_expect)}")
    try:
        expect = expectation(bind(Expectation, (), raw_expect, what="key in 'expect'"), case_where)
    except Invalid as exc:
        raise Invalid(f"expect: {exc}") from None
    return SmokeCase(id=case_id, input=case_input, expect=expect, path=path)


def case_of(node: pytest.Item, where: Where) -> SmokeCase | None:
    """The case a parametrized ``smoke_cases`` item runs (``callspec.params[CASE_PARAM]``), or None.

    Raises MarkerError when that parameter holds anything but a loaded case.
    """
    params = getattr(getattr(node, "callspec", None), "params", None) or {}
    if CASE_PARAM not in params:
        return None
    case = params[CASE_PARAM]
    if not isinstance(case, SmokeCase):
        where.fail("smoke_cases", f"parameter {CASE_PARAM!r} holds {short(case)}, not a loaded smoke case")
    return case
