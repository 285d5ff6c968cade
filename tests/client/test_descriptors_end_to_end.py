"""The embedded server behind a gRPC proxy: without reflection, and with every field renumbered.

The proxy forwards to the real embedded server (real runs, real SQLite, real handlers); with a
renumbered pool it transcodes by field name, so it is a copy of the service whose field numbers
are all different from the bundled proto's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kit import Platform as Admin
from kit.scripted import settings_for
from kit.wire import GrpcProxy, scriptum_pool

from pytest_scriptum.client import GrpcClient, ScriptumError
from pytest_scriptum.client._contract import EXTENSIONS


@pytest.fixture(scope="module")
def renumbered(server_addresses: tuple[str, str]) -> Iterator[GrpcProxy]:
    with GrpcProxy(server_addresses[0], pool=scriptum_pool(offset=1000)) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def renumbered_without_reflection(server_addresses: tuple[str, str]) -> Iterator[GrpcProxy]:
    with GrpcProxy(server_addresses[0], pool=scriptum_pool(offset=1000), reflection_on=False) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def without_reflection(server_addresses: tuple[str, str]) -> Iterator[GrpcProxy]:
    with GrpcProxy(server_addresses[0], reflection_on=False) as proxy:
        yield proxy


def test_without_reflection_the_client_says_bundled_and_still_works(
    without_reflection: GrpcProxy, server_addresses: tuple[str, str], admin: Admin
) -> None:
    with (
        GrpcClient(settings_for(without_reflection.target, None)) as client,
        GrpcClient(settings_for(server_addresses[0], None)) as direct,
    ):
        info = client.api_info()
        assert info.descriptors == "bundled" and "UNIMPLEMENTED" in info.detail
        assert direct.api_info().descriptors == "reflection"
        run = client.run_thread("echo", 3, {"via": "proxy"})
        assert (run.thread.status, run.thread.version) == ("COMPLETED", 3)
        assert direct.get_thread(run.thread.thread_id) == run.thread
        assert client.get_script("echo") == direct.get_script("echo")


def test_a_renumbered_service_gives_identical_outcomes(
    renumbered: GrpcProxy, server_addresses: tuple[str, str], admin: Admin
) -> None:
    with (
        GrpcClient(settings_for(renumbered.target, None)) as client,
        GrpcClient(settings_for(server_addresses[0], None)) as direct,
    ):
        info = client.api_info()
        assert (info.descriptors, info.problems, info.extensions) == ("reflection", (), EXTENSIONS)
        assert client.get_script("echo") == direct.get_script("echo")
        assert client.list_script_versions("echo") == direct.list_script_versions("echo")
        assert client.get_script_env("echo") == direct.get_script_env("echo")
        for version in (1, 3):
            run = client.run_thread("echo", version, {"n": version, "nested": version == 3})
            assert (run.thread.status, run.thread.version) == ("COMPLETED", version)
            assert run.output is not None and json.loads(run.output.output_data)["version"] == version
            assert direct.get_thread(run.thread.thread_id) == run.thread
            assert direct.get_thread_result(run.thread.thread_id) == run.output
        failed = client.run_thread("echo", 2, {"fail": True})
        assert (failed.thread.status, failed.thread.error_code) == ("FAILED", "SCRIPT_ERROR")
        big = client.run_thread("echo", 3, {"big_mib": 10}, timeout_s=120)
        assert big.output is not None and big.output.streamed
        assert big.output == direct.get_thread_result(big.thread.thread_id)


def test_a_renumbered_service_without_reflection_never_runs_anything_by_accident(
    renumbered_without_reflection: GrpcProxy, admin: Admin
) -> None:
    with GrpcClient(settings_for(renumbered_without_reflection.target, None)) as client:
        assert client.api_info().descriptors == "bundled"
        # The bundled numbers mean nothing here: the script name does not arrive, so nothing runs.
        with pytest.raises(ScriptumError) as info:
            client.run_thread("echo", 3, {})
        assert info.value.code in ("INVALID_ARGUMENT", "NOT_FOUND")
    assert admin.stats().runs_started == 0
