"""ScriptumError, the one platform-error type of the client, and the HTTP -> gRPC code mapping."""

from __future__ import annotations

__all__ = [
    "GRPC_CODE_NAMES",
    "HTTP_STATUS_TO_CODE",
    "ScriptumError",
    "code_for_http_status",
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
