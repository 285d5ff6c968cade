"""The dev server's admin API (ScriptumDevAdmin: faults and counters, over gRPC and its HTTP
routes under /v1/scriptum/admin) acts on the caller's organization only: another organization's
faults never touch our calls or threads, its counters never count ours, and its reset never
clears ours."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from kit import Platform

from pytest_scriptum._proto import scriptum_pb2 as pb

HOSTILE_FAULTS: dict[str, Any] = {
    "error_rate": 1.0,
    "error_status": "UNAVAILABLE",
    "version_skew": 5,
    "platform_failure": "PLATFORM_CAPACITY",
}


class Admin:
    """One organization's admin calls over one transport (gRPC stubs, or the gateway's routes)."""

    def __init__(self, platform: Platform, transport: str) -> None:
        self.platform = platform
        self.transport = transport

    def _http(self, verb: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.request(
            verb, f"{self.platform.http}{path}", json=body, headers=dict(self.platform.metadata), timeout=10
        )
        assert response.status_code == 200, response.text[:300]
        answer: dict[str, Any] = response.json()
        return answer

    def set_faults(self, **fields: Any) -> None:
        if self.transport == "grpc":
            self.platform.set_faults(**fields)
        else:
            self._http("PUT", "/v1/scriptum/admin/faults", json_format.MessageToDict(pb.Faults(**fields)))

    def faults(self) -> pb.Faults:
        if self.transport == "grpc":
            admin, auth = self.platform.admin, self.platform.metadata
            return admin.GetFaults(pb.GetFaultsRequest(), metadata=auth, timeout=10)
        return json_format.ParseDict(self._http("GET", "/v1/scriptum/admin/faults"), pb.Faults())

    def stats(self) -> pb.Stats:
        if self.transport == "grpc":
            return self.platform.stats()
        return json_format.ParseDict(self._http("GET", "/v1/scriptum/admin/stats"), pb.Stats())

    def reset_stats(self) -> None:
        if self.transport == "grpc":
            admin, auth = self.platform.admin, self.platform.metadata
            admin.ResetStats(pb.ResetStatsRequest(), metadata=auth, timeout=10)
        else:
            self._http("POST", "/v1/scriptum/admin/stats:reset", {})


def _in_force(faults: pb.Faults) -> pb.Faults:
    """Fault settings without ``error_status``: the status injected errors would carry, which the
    server fills with its default (UNAVAILABLE) — a setting, not a fault."""
    faults.ClearField("error_status")
    return faults


@pytest.fixture(params=["grpc", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clean(platform: Platform, other: Platform) -> Iterator[None]:
    """Both organizations without faults and with zeroed counters, before and after."""
    for plat in (platform, other):
        plat.reset()
    yield
    for plat in (platform, other):
        plat.reset()


def test_another_orgs_faults_do_not_touch_our_calls_or_threads(
    platform: Platform, other: Platform, transport: str, clean: None
) -> None:
    theirs, ours = Admin(other, transport), Admin(platform, transport)
    theirs.set_faults(**HOSTILE_FAULTS)
    assert theirs.faults() == pb.Faults(**HOSTILE_FAULTS)  # in force over there ...
    with pytest.raises(grpc.RpcError) as raised:  # ... as its own calls show,
        other.stub.ListScripts(pb.ListScriptsRequest(), metadata=other.metadata, timeout=10)
    assert isinstance(raised.value, grpc.Call) and raised.value.code() == grpc.StatusCode.UNAVAILABLE

    # ... and not here.
    assert _in_force(ours.faults()) == pb.Faults()
    thread, result = platform.run("alpha", 1, {"x": 21})
    assert (thread.status, thread.error_code, thread.version) == (pb.THREAD_STATUS_COMPLETED, "", 1)
    assert (result.version, json.loads(result.output_data)["x2"]) == (1, 42)


def test_counters_and_their_reset_are_per_organization(
    platform: Platform, other: Platform, transport: str, clean: None
) -> None:
    theirs, ours = Admin(other, transport), Admin(platform, transport)
    for _ in range(3):
        platform.script("alpha")
    platform.run("alpha", 1, {"x": 1})
    counted = ours.stats()
    assert (counted.calls["GetScript"], counted.calls["CreateThread"], counted.runs_started) == (3, 1, 1)

    for _ in range(2):  # the other organization's reads of its own (missing) script
        with pytest.raises(grpc.RpcError):
            other.script("alpha")
    their_count = theirs.stats()
    assert (their_count.calls["GetScript"], their_count.calls.get("CreateThread", 0)) == (2, 0)
    assert their_count.runs_started == 0

    theirs.reset_stats()
    after = ours.stats()
    assert (after.calls["GetScript"], after.calls["CreateThread"], after.runs_started) == (3, 1, 1)
    assert theirs.stats().calls.get("GetScript", 0) == 0
