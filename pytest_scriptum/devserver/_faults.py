"""Fault injection (latency, errors, stalls, version skew, platform failures) and counters, both
per organization: ScriptumDevAdmin calls see and change only the caller's organization.

The faults given at start (`scriptum-devserver --fault-...`) are every organization's default
until that organization calls SetFaults.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field
from typing import Any

import grpc

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._errors import ApiError, invalid

__all__ = [
    "PLATFORM_CODES",
    "SERVICE_METHODS",
    "FaultDecision",
    "FaultInjector",
    "StatsBook",
    "validate_faults",
]

SERVICE_METHODS: frozenset[str] = frozenset(
    method.name for method in pb.DESCRIPTOR.services_by_name["ScriptumService"].methods
)
# Shared semantics: the platform's own failure codes.
PLATFORM_CODES = ("PLATFORM_CAPACITY", "PLATFORM_RUNTIME_CRASH", "PLATFORM_RESTART", "PLATFORM_DEADLINE")
# Injected RESOURCE_EXHAUSTED errors, and threads refused by max_in_flight, carry this retry hint
# (a whole second: HTTP's Retry-After header counts in integer seconds, and both transports
# should say the same).
RETRY_AFTER_S = 1.0


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one call: before it (latency, stall, error) and after it (latency_after)."""

    latency_s: float = 0.0
    stall: bool = False
    error: ApiError | None = None
    latency_after_s: float = 0.0


NO_FAULT = FaultDecision()


def validate_faults(faults: pb.Faults) -> pb.Faults:
    """A normalised copy of `faults` (error_status upper-cased, default UNAVAILABLE), or ApiError."""
    if faults.latency_ms < 0:
        raise invalid(f"faults.latency_ms must be >= 0, got {faults.latency_ms}")
    if faults.latency_after_ms < 0:
        raise invalid(f"faults.latency_after_ms must be >= 0, got {faults.latency_after_ms}")
    if math.isnan(faults.error_rate) or not 0.0 <= faults.error_rate <= 1.0:
        raise invalid(f"faults.error_rate must be between 0 and 1, got {faults.error_rate}")
    if faults.error_next < 0:
        raise invalid(f"faults.error_next must be >= 0, got {faults.error_next}")
    if faults.fail_version < 0:
        raise invalid(f"faults.fail_version must be >= 0 (0 = off), got {faults.fail_version}")
    if faults.max_in_flight < 0:
        raise invalid(f"faults.max_in_flight must be >= 0 (0 = no limit), got {faults.max_in_flight}")
    status = (faults.error_status or "UNAVAILABLE").strip().upper()
    if status not in grpc.StatusCode.__members__ or status == "OK":
        names = ", ".join(name for name in grpc.StatusCode.__members__ if name != "OK")
        raise invalid(
            f"faults.error_status {faults.error_status!r} is not a gRPC status name (one of {names})"
        )
    unknown = sorted(set(faults.methods) - SERVICE_METHODS)
    if unknown:
        raise invalid(
            f"faults.methods: unknown ScriptumService method(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(SERVICE_METHODS))})"
        )
    failure = faults.platform_failure.strip().upper()
    if failure and failure not in PLATFORM_CODES:
        raise invalid(
            f"faults.platform_failure {faults.platform_failure!r} is not a platform error code "
            f"(one of {', '.join(PLATFORM_CODES)}, or '' for none)"
        )
    normalised = pb.Faults()
    normalised.CopyFrom(faults)
    normalised.error_status = status
    normalised.platform_failure = failure
    return normalised


class FaultInjector:
    """Thread-safe fault settings per organization; `decide` is called once per ScriptumService call."""

    def __init__(self, defaults: pb.Faults | None = None, *, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._defaults = validate_faults(defaults if defaults is not None else pb.Faults())
        self._by_org: dict[str, pb.Faults] = {}
        self._random = random.Random(seed)

    def _of(self, org: str) -> pb.Faults:
        faults = self._by_org.get(org)
        if faults is None:
            faults = self._by_org[org] = pb.Faults()
            faults.CopyFrom(self._defaults)
        return faults

    def get(self, org: str) -> pb.Faults:
        """A copy of `org`'s settings."""
        with self._lock:
            current = pb.Faults()
            current.CopyFrom(self._of(org))
            return current

    def set(self, org: str, faults: pb.Faults) -> pb.Faults:
        """Replace `org`'s settings (ApiError INVALID_ARGUMENT naming a bad field); returns them."""
        normalised = validate_faults(faults)
        with self._lock:
            self._by_org[org] = normalised
        return self.get(org)

    def decide(self, org: str, method: str) -> FaultDecision:
        """The faults for one call of `method` by `org` (consumes one `error_next` when it fires)."""
        with self._lock:
            faults = self._of(org)
            if not _matches(faults, method):
                return NO_FAULT
            error: ApiError | None = None
            if faults.error_next > 0:
                faults.error_next -= 1
                error = _error(faults, method, "error_next")
            elif faults.error_rate > 0 and self._random.random() < faults.error_rate:
                error = _error(faults, method, "error_rate")
            if not (faults.latency_ms or faults.stall or error or faults.latency_after_ms):
                return NO_FAULT
            return FaultDecision(
                latency_s=faults.latency_ms / 1000.0,
                stall=faults.stall,
                error=error,
                latency_after_s=faults.latency_after_ms / 1000.0,
            )

    def version_skew(self, org: str, method: str) -> int:
        """What to add to the versions a response of `method` reports (0 when off)."""
        with self._lock:
            faults = self._of(org)
            return int(faults.version_skew) if faults.version_skew and _matches(faults, method) else 0

    def max_in_flight(self, org: str) -> int:
        """How many of `org`'s threads may be in flight before new ones are refused (0 = no limit)."""
        with self._lock:
            return int(self._of(org).max_in_flight)

    def platform_failure(self, org: str) -> str:
        """The PLATFORM_* code new threads of `org` fail with ("" = off)."""
        with self._lock:
            return self._of(org).platform_failure

    def fails_version(self, org: str, version: int, draft: bool) -> bool:
        """Whether a thread of `org` pinned to `version` fails as the script's own error
        (``Faults.fail_version``); a draft test thread never does."""
        with self._lock:
            wanted = self._of(org).fail_version
        return bool(wanted) and not draft and version == wanted


def _matches(faults: pb.Faults, method: str) -> bool:
    return method in SERVICE_METHODS and (not faults.methods or method in faults.methods)


def _error(faults: pb.Faults, method: str, why: str) -> ApiError:
    code = grpc.StatusCode[faults.error_status]
    retry_after = RETRY_AFTER_S if code is grpc.StatusCode.RESOURCE_EXHAUSTED else None
    return ApiError(code, f"injected fault ({why}) on {method}", retry_after_s=retry_after)


@dataclass
class _Counters:
    calls: dict[str, int] = field(default_factory=dict)
    runs_started: int = 0
    runs_cancelled: int = 0
    rollbacks_applied: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    workers_started: int = 0
    runs_throttled: int = 0
    threads_in_flight: int = 0
    max_threads_in_flight: int = 0


class StatsBook:
    """Call and execution counters per organization (ScriptumDevAdmin.GetStats, /metrics)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._orgs: dict[str, _Counters] = {}

    def _of(self, org: str) -> _Counters:
        counters = self._orgs.get(org)
        if counters is None:
            counters = self._orgs[org] = _Counters()
        return counters

    def count_call(self, org: str, method: str) -> None:
        with self._lock:
            calls = self._of(org).calls
            calls[method] = calls.get(method, 0) + 1

    def run_started(self, org: str) -> None:
        with self._lock:
            self._of(org).runs_started += 1

    def enter_run(self, org: str) -> None:
        with self._lock:
            counters = self._of(org)
            counters.in_flight += 1
            counters.max_in_flight = max(counters.max_in_flight, counters.in_flight)

    def exit_run(self, org: str, *, cancelled: bool) -> None:
        with self._lock:
            counters = self._of(org)
            counters.in_flight -= 1
            if cancelled:
                counters.runs_cancelled += 1

    def thread_entered(self, org: str) -> None:
        """A thread was accepted (or resumed): in flight until it settles."""
        with self._lock:
            counters = self._of(org)
            counters.threads_in_flight += 1
            counters.max_threads_in_flight = max(counters.max_threads_in_flight, counters.threads_in_flight)

    def thread_left(self, org: str) -> None:
        """A thread settled (terminal or PAUSED)."""
        with self._lock:
            self._of(org).threads_in_flight -= 1

    def throttled(self, org: str) -> None:
        """A new thread was refused because max_in_flight were in flight."""
        with self._lock:
            self._of(org).runs_throttled += 1

    def rollback_applied(self, org: str) -> None:
        with self._lock:
            self._of(org).rollbacks_applied += 1

    def worker_started(self, org: str) -> None:
        with self._lock:
            self._of(org).workers_started += 1

    def snapshot(self, org: str) -> pb.Stats:
        with self._lock:
            c = self._of(org)
            return pb.Stats(
                calls=c.calls,
                runs_started=c.runs_started,
                runs_cancelled=c.runs_cancelled,
                rollbacks_applied=c.rollbacks_applied,
                runs_in_flight=c.in_flight,
                max_runs_in_flight=c.max_in_flight,
                workers_started=c.workers_started,
                runs_throttled=c.runs_throttled,
                threads_in_flight=c.threads_in_flight,
                max_threads_in_flight=c.max_threads_in_flight,
            )

    def reset(self, org: str) -> pb.Stats:
        """Zero `org`'s counters; runs and threads in flight stay counted (gauges, not totals)."""
        with self._lock:
            c = self._of(org)
            self._orgs[org] = _Counters(
                in_flight=c.in_flight,
                max_in_flight=c.in_flight,
                threads_in_flight=c.threads_in_flight,
                max_threads_in_flight=c.threads_in_flight,
            )
        return self.snapshot(org)

    def totals(self) -> dict[str, Any]:
        """Sums over every organization, for /metrics."""
        with self._lock:
            calls: dict[str, int] = {}
            totals = {"runs_started": 0, "runs_cancelled": 0, "rollbacks_applied": 0, "in_flight": 0,
                      "workers_started": 0}  # fmt: skip
            for c in self._orgs.values():
                for method, count in c.calls.items():
                    calls[method] = calls.get(method, 0) + count
                totals["runs_started"] += c.runs_started
                totals["runs_cancelled"] += c.runs_cancelled
                totals["rollbacks_applied"] += c.rollbacks_applied
                totals["in_flight"] += c.in_flight
                totals["workers_started"] += c.workers_started
            return {"calls": calls, **totals}
