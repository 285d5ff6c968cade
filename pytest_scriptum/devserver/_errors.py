"""The one error type of the server's logic, and its mapping to HTTP statuses."""

from __future__ import annotations

import grpc

__all__ = [
    "HTTP_STATUS",
    "MAX_MESSAGE_CHARS",
    "ApiError",
    "already_exists",
    "http_status_for",
    "invalid",
    "not_found",
    "precondition",
    "unimplemented",
]

# Messages quote what the caller sent; a huge value must not make the error itself undeliverable
# (gRPC clients refuse status details over 16 KiB, and non-ASCII is percent-encoded up to 12x).
MAX_MESSAGE_CHARS = 1000

# docs/http-gateway.md, "Errors": grpc-gateway's mapping (runtime.HTTPStatusFromCode).
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def http_status_for(code: grpc.StatusCode) -> int:
    """The HTTP status of a gRPC status code (500 for anything unmapped)."""
    return HTTP_STATUS.get(code, 500)


class ApiError(Exception):
    """A failed call: a gRPC status code and a message naming what was wrong.

    `http_status` overrides the mapped HTTP status (413 for oversized input); `retry_after_s` is
    the retry hint sent with RESOURCE_EXHAUSTED.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        http_status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = f"{message[:MAX_MESSAGE_CHARS]}... ({len(message) - MAX_MESSAGE_CHARS} more characters)"
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status if http_status is not None else http_status_for(code)
        self.retry_after_s = retry_after_s

    @property
    def code_name(self) -> str:
        """The status name as sent in HTTP error bodies, e.g. "NOT_FOUND"."""
        return str(self.code.name)

    @property
    def code_number(self) -> int:
        """The numeric gRPC status code, e.g. 5 for NOT_FOUND (HTTP error bodies' "code")."""
        value = self.code.value
        return int(value[0] if isinstance(value, tuple) else value)


def invalid(message: str, *, http_status: int | None = None) -> ApiError:
    """INVALID_ARGUMENT."""
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message, http_status=http_status)


def not_found(message: str) -> ApiError:
    """NOT_FOUND."""
    return ApiError(grpc.StatusCode.NOT_FOUND, message)


def precondition(message: str) -> ApiError:
    """FAILED_PRECONDITION."""
    return ApiError(grpc.StatusCode.FAILED_PRECONDITION, message)


def unimplemented(message: str) -> ApiError:
    """UNIMPLEMENTED."""
    return ApiError(grpc.StatusCode.UNIMPLEMENTED, message)


def already_exists(message: str) -> ApiError:
    """ALREADY_EXISTS."""
    return ApiError(grpc.StatusCode.ALREADY_EXISTS, message)
