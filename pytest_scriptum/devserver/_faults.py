"""Fault injection (latency, errors, stalls, version skew) and the server's counters."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass

import grpc

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._errors import ApiError, invalid

__all__ = ["SERVICE_METHODS", "FaultDecision", "FaultInjector", "StatsCounter"]

SERVICE_METHODS: frozenset[str] = frozenset(
    method.name for method in pb.DESCRIPTOR.services_by_name["ScriptumService"].methods
)
# Injected RESOURCE_EXHAUSTED errors carry this retry hint (a whole second: HTTP's Retry-After
# header counts in integer seconds, and both transports should say the same).
RETRY_AFTER_S = 1.0


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one call before it runs."""

    latency_s: float = 0.0
    stall: bool = False
    error: ApiError | None = None


NO_FAULT = FaultDecision()


def validate_faults(faults: pb.Faults) -> pb.Faults:
    """A normalised copy of `faults` (error_status upper-cased, default UNAVAILABLE), or ApiError."""
    if faults.latency_ms < 0:
        raise invalid(f"faults.latency_ms must be >= 0, got {faults.latency_ms}")
    if math.isnan(faults.error_rate) or not 0.0 <= faults.error_rate <= 1.0:
        raise invalid(f"faults.error_rate must be between 0 and 1, got {faults.error_rate}")
    if faults.error_next < 0:
        raise invalid(f"faults.error_next must be >= 0, got {faults.error_next}")
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
    normalised = pb.Faults()
    normalised.CopyFrom(faults)
    normalised.error_status = status
    return normalised


class FaultInjector:
    """Thread-safe fault settings; `decide` is called once per ScriptumService call."""

    def __init__(self, faults: pb.Faults | None = None, *, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = validate_faults(faults if faults is not None else pb.Faults())
        self._random = random.Random(seed)

    def get(self) -> pb.Faults:
        """A copy of the settings in force."""
        with self._lock:
            current = pb.Faults()
            current.CopyFrom(self._faults)
            return current

    def set(self, faults: pb.Faults) -> pb.Faults:
        """Replace the settings (ApiError INVALID_ARGUMENT naming a bad field); returns them."""
        normalised = validate_faults(faults)
        with self._lock:
            self._faults = normalised
        return self.get()

    def decide(self, method: str) -> FaultDecision:
        """The faults for one call of `method` (consumes one `error_next` when it fires)."""
        with self._lock:
            faults = self._faults
            if not self._matches(method):
                return NO_FAULT
            error: ApiError | None = None
            if faults.error_next > 0:
                faults.error_next -= 1
                error = self._error(method, "error_next")
            elif faults.error_rate > 0 and self._random.random() < faults.error_rate:
                error = self._error(method, "error_rate")
            return FaultDecision(latency_s=faults.latency_ms / 1000.0, stall=faults.stall, error=error)

    def version_skew(self, method: str) -> int:
        """What to add to the version a RunThread/GetThread response reports."""
        with self._lock:
            if method not in ("RunThread", "GetThread") or not self._matches(method):
                return 0
            return int(self._faults.version_skew)

    def _matches(self, method: str) -> bool:
        return method in SERVICE_METHODS and (not self._faults.methods or method in self._faults.methods)

    def _error(self, method: str, why: str) -> ApiError:
        code = grpc.StatusCode[self._faults.error_status]
        retry_after = RETRY_AFTER_S if code is grpc.StatusCode.RESOURCE_EXHAUSTED else None
        return ApiError(code, f"injected fault ({why}) on {method}", retry_after_s=retry_after)


class StatsCounter:
    """Call and execution counters (ScriptumDevAdmin.GetStats)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}
        self._runs_started = 0
        self._runs_cancelled = 0
        self._rollbacks_applied = 0
        self._in_flight = 0
        self._max_in_flight = 0

    def count_call(self, method: str) -> None:
        with self._lock:
            self._calls[method] = self._calls.get(method, 0) + 1

    def run_started(self) -> None:
        with self._lock:
            self._runs_started += 1

    def enter_run(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def exit_run(self, *, cancelled: bool) -> None:
        with self._lock:
            self._in_flight -= 1
            if cancelled:
                self._runs_cancelled += 1

    def run_cancelled_before_start(self) -> None:
        with self._lock:
            self._runs_cancelled += 1

    def rollback_applied(self) -> None:
        with self._lock:
            self._rollbacks_applied += 1

    def snapshot(self) -> pb.Stats:
        with self._lock:
            return pb.Stats(
                calls=self._calls,
                runs_started=self._runs_started,
                runs_cancelled=self._runs_cancelled,
                rollbacks_applied=self._rollbacks_applied,
                runs_in_flight=self._in_flight,
                max_runs_in_flight=self._max_in_flight,
            )

    def reset(self) -> pb.Stats:
        """Zero every counter; runs in flight stay counted (they are a gauge, not a total)."""
        with self._lock:
            self._calls = {}
            self._runs_started = 0
            self._runs_cancelled = 0
            self._rollbacks_applied = 0
            self._max_in_flight = self._in_flight
        return self.snapshot()
