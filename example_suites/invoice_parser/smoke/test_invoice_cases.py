"""Data-driven smoke cases: one test per ``cases/*.json`` file, ids from the files' "id" keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_scriptum.runner import ThreadResult

pytestmark = pytest.mark.scriptum("invoice-parser")


@pytest.mark.smoke_cases("cases/*.json")
def test_invoice_case(smoke_thread: ThreadResult) -> None:
    """Each case's input and expectation live in its JSON file; a FAILED case still records steps."""
    assert smoke_thread.script == "invoice-parser"
    assert smoke_thread.steps, "the handler recorded no step"
    assert smoke_thread.steps[0].name == "extract"
