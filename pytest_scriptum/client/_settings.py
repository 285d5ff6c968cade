"""Client settings, the retry policy, and the choice between TLS and plaintext."""

from __future__ import annotations

import ipaddress
import random
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import grpc

from .._limits import RETRY_BUDGET_MIN, RETRY_BUDGET_RATIO

if TYPE_CHECKING:
    # httpx (with the click and rich its command line pulls in: about 6 MB resident) is imported
    # by check_http_url, so a session on the gRPC transport never loads it (issue 18, memory).
    import httpx

__all__ = [
    "MAX_RETRY_HINT_S",
    "ClientSettings",
    "RetryBudget",
    "RetryPolicy",
    "channel_credentials_for",
    "check_http_url",
    "host_of_target",
    "is_loopback",
]

# A server's retry hint is honoured up to this many seconds, so a confused server cannot park a
# CI run for an hour.
MAX_RETRY_HINT_S = 30.0


class RetryBudget:
    """The total retry budget of one client (one session process; DESIGN section 2: retries are
    bounded per call and per run): every call deposits, every retry withdraws; a retry is allowed
    while retries < ``RETRY_BUDGET_MIN`` + ``RETRY_BUDGET_RATIO`` x calls. A retry the server
    asked for with a retry hint is not charged: the hint paces it. Thread-safe."""

    def __init__(self, minimum: int = RETRY_BUDGET_MIN, ratio: float = RETRY_BUDGET_RATIO) -> None:
        self.minimum = minimum
        self.ratio = ratio
        self.calls = 0
        self.retries = 0
        self._lock = threading.Lock()

    def called(self) -> None:
        """A call was made (its first attempt)."""
        with self._lock:
            self.calls += 1

    def take(self) -> bool:
        """Withdraw one retry; False when the budget is spent."""
        with self._lock:
            if self.retries >= self.minimum + self.ratio * self.calls:
                return False
            self.retries += 1
            return True

    def __repr__(self) -> str:
        return f"RetryBudget(calls={self.calls}, retries={self.retries})"


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of platform errors only: full-jitter exponential backoff.

    Attempt ``n`` (0-based) waits ``uniform(0, min(max_delay_s, base_delay_s * 2**n))``, or the
    server's hint when it sent one.
    """

    retries: int = 2
    base_delay_s: float = 0.1
    max_delay_s: float = 2.0
    budget: RetryBudget = field(default_factory=RetryBudget, compare=False)
    """Shared by every call of the client built with this policy (issue 12 input 9)."""

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"RetryPolicy.retries must be >= 0, got {self.retries}")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError(
                f"RetryPolicy delays must be >= 0, got base_delay_s={self.base_delay_s}, "
                f"max_delay_s={self.max_delay_s}")

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (0-based) before the next one."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), MAX_RETRY_HINT_S)
        cap = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(attempt, 62))
        return random.uniform(0.0, cap)


@dataclass(frozen=True)
class ClientSettings:
    """Where the platform is and how to talk to it. The token never appears in the repr."""

    endpoint: str
    http_url: str | None
    org: str
    token: str = field(repr=False)
    transport: Literal["grpc", "http"] = "grpc"
    insecure: bool = False
    call_timeout_s: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)  # its own retry budget per client
    # Added to a thread's own timeout to make the client's deadline of a watch, so the platform's
    # verdict on a late thread (FAILED, SCRIPT_DEADLINE) arrives before the client gives up.
    run_deadline_margin_s: float = 5.0
    # Sent as x-organization-name when set (x-organization-id carries ``org`` when set): the docs
    # disagree on which org header the gateway needs, so the client sends what is configured.
    org_name: str = ""

    def __post_init__(self) -> None:
        if self.transport not in ("grpc", "http"):
            raise ValueError(f"ClientSettings.transport must be 'grpc' or 'http', got {self.transport!r}")
        if not self.call_timeout_s > 0:
            raise ValueError(f"ClientSettings.call_timeout_s must be > 0, got {self.call_timeout_s}")
        if not self.run_deadline_margin_s >= 0:
            raise ValueError(
                f"ClientSettings.run_deadline_margin_s must be >= 0, got {self.run_deadline_margin_s}")

    def require_credentials(self) -> None:
        """ValueError when the token is empty (no authenticated call could succeed).

        The organization is optional: the platform's conventions page says it travels with the
        token; ``org`` / ``org_name`` are sent when configured.
        """
        if not self.token:
            raise ValueError(
                "no Scriptum token: set DODIL_TOKEN or SCRIPTUM_TOKEN (or the env var named by "
                "scriptum_token_env)")

    def auth_metadata(self) -> tuple[tuple[str, str], ...]:
        """The auth headers/metadata of every call: ``authorization: Bearer <token>``, plus
        ``x-organization-id`` / ``x-organization-name`` when configured.

        It holds the token: callers pass it straight into a call and never keep it in a local
        variable (pytest --showlocals prints the locals of the frames of a traceback).
        """
        return (("authorization", f"Bearer {self.token}"),
                *((("x-organization-id", self.org),) if self.org else ()),
                *((("x-organization-name", self.org_name),) if self.org_name else ()))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: 127.0.0.0/8, ::1 (bracketed or not) or localhost."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def host_of_target(target: str) -> str:
    """The host of a gRPC target: ``host:port``, ``[v6]:port``, ``dns:///host:port`` or ``unix:...``."""
    rest = target.strip()
    if rest.startswith(("unix:", "unix-abstract:")):
        return "localhost"  # a Unix socket never leaves the machine
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if rest.startswith(prefix):
            rest = rest[len(prefix):]
            break
    if "/" in rest:  # dns://authority/host:port
        rest = rest.rsplit("/", 1)[1]
    if rest.startswith("["):
        return rest[1:rest.find("]")] if "]" in rest else rest[1:]
    if rest.count(":") == 1:
        return rest.split(":", 1)[0]
    return rest  # a bare host, or a bare IPv6 address


def channel_credentials_for(target: str, *, insecure: bool) -> grpc.ChannelCredentials | None:
    """None (plaintext) for loopback targets or when insecure; grpc.ssl_channel_credentials() otherwise."""
    if insecure or is_loopback(host_of_target(target)):
        return None
    return grpc.ssl_channel_credentials()


def check_http_url(url: str, *, insecure: bool) -> httpx.URL:
    """The parsed gateway URL, or ValueError when it is malformed or plaintext off-loopback."""
    import httpx  # see TYPE_CHECKING above

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"invalid Scriptum HTTP URL {url!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"invalid Scriptum HTTP URL {url!r}: expected http://HOST[:PORT] or https://HOST[:PORT]")
    if parsed.scheme == "http" and not insecure and not is_loopback(parsed.host):
        raise ValueError(
            f"refusing plaintext HTTP to {url}: the bearer token would travel unencrypted to a "
            "non-loopback host; use https:// or pass --scriptum-insecure")
    return parsed
