"""ScriptumError's contract and the HTTP -> gRPC code table."""

from __future__ import annotations

import pickle

import pytest

from pytest_scriptum.client import ScriptumError
from pytest_scriptum.client._errors import (
    GRPC_CODE_NAMES,
    GRPC_CODE_NUMBERS,
    code_for_http_status,
    code_of_error_body,
    redact,
)


def test_str_is_method_code_message() -> None:
    error = ScriptumError("NOT_FOUND", "script 'x' not found", "GetScript")
    assert str(error) == "GetScript: NOT_FOUND: script 'x' not found"
    assert (error.code, error.message, error.method, error.retry_after_s) == (
        "NOT_FOUND",
        "script 'x' not found",
        "GetScript",
        None,
    )


@pytest.mark.parametrize(
    ("code", "conflict", "auth"),
    [
        ("FAILED_PRECONDITION", True, False),
        ("UNAUTHENTICATED", False, True),
        ("PERMISSION_DENIED", False, True),
        ("NOT_FOUND", False, False),
        ("ALREADY_EXISTS", False, False),
        ("UNAVAILABLE", False, False),
    ],
)
def test_classification(code: str, conflict: bool, auth: bool) -> None:
    error = ScriptumError(code, "m", "RollbackScript")
    assert error.is_conflict is conflict
    assert error.is_auth is auth


def test_pickles_for_xdist() -> None:
    error = ScriptumError("RESOURCE_EXHAUSTED", "slow down", "CreateThread", 1.5)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.message, copy.method, copy.retry_after_s, str(copy)) == (
        "RESOURCE_EXHAUSTED",
        "slow down",
        "CreateThread",
        1.5,
        str(error),
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (409, "FAILED_PRECONDITION"),
        (413, "INVALID_ARGUMENT"),
        (429, "RESOURCE_EXHAUSTED"),
        (499, "CANCELLED"),
        (500, "INTERNAL"),
        (501, "UNIMPLEMENTED"),
        (502, "UNAVAILABLE"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
        (418, "UNKNOWN"),
        (507, "UNKNOWN"),
    ],
)
def test_http_status_fallback(status: int, code: str) -> None:
    assert code_for_http_status(status) == code
    assert code in GRPC_CODE_NAMES


def test_redact_masks_every_occurrence() -> None:
    assert redact("Bearer abc and abc", "abc") == "Bearer *** and ***"
    assert redact("nothing", "") == "nothing"


def test_grpc_code_numbers_are_the_names() -> None:
    assert set(GRPC_CODE_NUMBERS.values()) == GRPC_CODE_NAMES
    assert (GRPC_CODE_NUMBERS[5], GRPC_CODE_NUMBERS[9], GRPC_CODE_NUMBERS[14]) == (
        "NOT_FOUND",
        "FAILED_PRECONDITION",
        "UNAVAILABLE",
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"code": 9, "status": "FAILED_PRECONDITION", "message": "m"}, 400, "FAILED_PRECONDITION"),
        ({"code": 9, "message": "m"}, 400, "FAILED_PRECONDITION"),
        ({"status": "NOT_FOUND"}, 400, "NOT_FOUND"),
        ({"code": "unavailable"}, 500, "UNAVAILABLE"),
        ({"grpc_code": 8}, 500, "RESOURCE_EXHAUSTED"),
        ({"code": 99, "status": "NOPE"}, 409, "FAILED_PRECONDITION"),
        ({"code": True}, 404, "NOT_FOUND"),
        ("<html>", 503, "UNAVAILABLE"),
        (None, 418, "UNKNOWN"),
    ],
)
def test_the_code_of_an_error_body(body: object, status: int, code: str) -> None:
    assert code_of_error_body(body, status) == code
