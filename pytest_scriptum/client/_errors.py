"""ScriptumError, the one platform-error type of the client, and the HTTP -> gRPC code mapping."""

from __future__ import annotations

__all__ = [
    "GRPC_CODE_NAMES",
    "GRPC_CODE_NUMBERS",
    "HTTP_STATUS_TO_CODE",
    "ScriptumError",
    "cancelled_error",
    "code_for_http_status",
    "code_of_error_body",
    "is_pushback",
    "redact",
]

# Every gRPC status name except OK: what an error body's "code" may say.
GRPC_CODE_NAMES: frozenset[str] = frozenset({
    "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
})

# docs/http-gateway.md "Errors", read backwards. Used only when the body does not name a code
# (a proxy's error page, say). 409 is both ALREADY_EXISTS and FAILED_PRECONDITION on the gateway;
# FAILED_PRECONDITION is the one a caller acts on (a compare-and-set conflict). 502 comes from
# proxies in front of a down gateway, so it is UNAVAILABLE like 503.
HTTP_STATUS_TO_CODE: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "FAILED_PRECONDITION",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


# The gRPC status numbers (grpc/doc/statuscodes.md): an error body's "code" is one of these.
GRPC_CODE_NUMBERS: dict[int, str] = {
    1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
    6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
    10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
    15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}


def code_of_error_body(body: object, http_status: int) -> str:
    """The gRPC status name an HTTP error body names, else the one of the HTTP status.

    Bodies are ``{"code": <int>, "status": "<NAME>", "message": ...}`` (the gateway's; DESIGN
    section 5); a ``"code"`` that is a name, or grpc-gateway v1's ``"grpc_code"``, is read too.
    """
    if isinstance(body, dict):
        for key in ("status", "code", "grpc_code"):
            value = body.get(key)
            if isinstance(value, str) and value.upper() in GRPC_CODE_NAMES:
                return value.upper()
            if isinstance(value, int) and not isinstance(value, bool) and value in GRPC_CODE_NUMBERS:
                return GRPC_CODE_NUMBERS[value]
    return code_for_http_status(http_status)


def code_for_http_status(status: int) -> str:
    """The gRPC status name of an HTTP error status whose body names no code."""
    return HTTP_STATUS_TO_CODE.get(status, "UNKNOWN")


def redact(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` masked (a no-op for an empty secret)."""
    return text.replace(secret, "***") if secret else text


class ScriptumError(Exception):
    """A platform error: `.code` is the gRPC status name ("UNAVAILABLE", "NOT_FOUND", ...).

    `str(error)` is ``"{method}: {code}: {message}"``; the client never puts the token in it.
    """

    def __init__(self, code: str, message: str, method: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(code, message, method, retry_after_s)
        self.code = code
        self.message = message
        self.method = method
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        return f"{self.method}: {self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"ScriptumError(code={self.code!r}, message={self.message!r}, method={self.method!r})"

    @property
    def is_conflict(self) -> bool:
        """A compare-and-set conflict (FAILED_PRECONDITION): someone else changed the state."""
        return self.code == "FAILED_PRECONDITION"

    @property
    def is_auth(self) -> bool:
        """The token or organization was refused (UNAUTHENTICATED or PERMISSION_DENIED)."""
        return self.code in ("UNAUTHENTICATED", "PERMISSION_DENIED")


def cancelled_error(method: str, note: str = "") -> ScriptumError:
    """The error raised when the caller's cancel event stops a run (``note`` says what became of
    the thread: cancelled, or CancelThread unavailable)."""
    return ScriptumError("CANCELLED", f"run cancelled by the caller{note}", method)


# The platform is busy or rate-limiting, not refusing the request (DESIGN section 6).
PUSHBACK_CODES = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE"})


def is_pushback(error: ScriptumError) -> bool:
    """Whether ``error`` is the platform pushing back (too busy, rate-limited), not a fault of the
    request: RESOURCE_EXHAUSTED, UNAVAILABLE, or any answer with a retry hint (DESIGN section 6)."""
    return error.code in PUSHBACK_CODES or error.retry_after_s is not None
