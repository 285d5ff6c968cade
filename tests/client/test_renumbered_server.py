"""The plugin never depends on our field numbers (issue 10, DESIGN section 5).

The same smoke suite runs against the embedded server directly and through a shim whose proto has
every field renumbered. With reflection the client reads the shim's descriptors and addresses
fields by name: the outcomes are identical, rollback and verification included. Without reflection
the client can only use the bundled descriptors, which no longer match: preflight must notice the
mismatch from probe answers that do not echo what was sent, end inconclusive (exit 20) and name it
- never a pass, never a thread on any version.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from kit import EXAMPLE_SUITE, ORG, TOKEN, copy_example_suite, outcomes
from kit.wire import GrpcProxy, renumbered_text_pool

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc
from pytest_scriptum.devserver import DevServer

METADATA = (("authorization", f"Bearer {TOKEN}"), ("x-organization-id", ORG))
OFFSET = 1000  # every field number moves by this much
_VERDICT = re.compile(r"^(verdict|rollback|rollback target): .*$", re.MULTILINE)


def _server(root: Path) -> DevServer:
    server = DevServer(data_dir=root, seed=EXAMPLE_SUITE / "seed", principals={TOKEN: ORG})
    server.start()
    return server


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    copy_example_suite(pytester)
    monkeypatch.setenv("DODIL_TOKEN", TOKEN)
    return pytester


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[DevServer, DevServer]]:
    direct, behind = _server(tmp_path / "direct"), _server(tmp_path / "behind")
    try:
        yield direct, behind
    finally:
        direct.stop(grace=0)
        behind.stop(grace=0)


def _session(suite: pytest.Pytester, target: str, server: DevServer, *args: str) -> pytest.RunResult:
    # The suite's one gateway test talks to the server's own gateway (pbjson is addressed by name).
    return suite.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rA", f"--scriptum-endpoint={target}", f"--scriptum-org={ORG}",
        f"--scriptum-http-url={server.addresses.http}",
        "--scriptum-incident=INC-WIRE", *args,
    )


def _active(server: DevServer) -> int:
    with grpc.insecure_channel(server.addresses.grpc) as channel:
        stub = pb_grpc.ScriptumServiceStub(channel)
        return stub.GetScript(pb.GetScriptRequest(name="invoice-parser"), metadata=METADATA).active_version


def _threads(server: DevServer) -> int:
    with grpc.insecure_channel(server.addresses.grpc) as channel:
        stub = pb_grpc.ScriptumServiceStub(channel)
        return len(stub.ListThreads(pb.ListThreadsRequest(page_size=1000), metadata=METADATA).threads)


def _stats(server: DevServer) -> pb.Stats:
    with grpc.insecure_channel(server.addresses.grpc) as channel:
        return pb_grpc.ScriptumDevAdminStub(channel).GetStats(pb.GetStatsRequest(), metadata=METADATA)


def _gate_lines(result: pytest.RunResult) -> list[str]:
    # The thread ids differ between the two servers; the verdict, target and rollback lines not.
    return [re.sub(r"thread \S+", "thread <id>", m.group(0)) for m in _VERDICT.finditer(result.stdout.str())]


@pytest.mark.parametrize("version", [4, 5])
def test_renumbered_server_with_reflection_gives_identical_outcomes(
    suite: pytest.Pytester, servers: tuple[DevServer, DevServer], version: int
) -> None:
    direct, behind = servers
    with GrpcProxy(behind.addresses.grpc, pool=renumbered_text_pool(OFFSET)) as shim:
        baseline = _session(suite, direct.addresses.grpc, direct, f"--scriptum-version={version}")
        shimmed = _session(suite, shim.target, behind, f"--scriptum-version={version}")
    # the session really went through the shim: the server behind it ran the threads
    assert _threads(behind) == _threads(direct) > 0

    assert outcomes(shimmed) == outcomes(baseline) and len(outcomes(baseline)) >= 20
    assert _gate_lines(shimmed) == _gate_lines(baseline) and _gate_lines(baseline)
    assert shimmed.ret == baseline.ret == (1 if version == 4 else 0)
    # v4: both platforms were rolled back to 3 by their own session; v5 left both on 4.
    assert _active(direct) == _active(behind) == (3 if version == 4 else 4)
    assert "descriptors: bundled" not in shimmed.stdout.str()


def test_renumbered_server_without_reflection_ends_in_preflight_naming_the_mismatch(
    suite: pytest.Pytester, servers: tuple[DevServer, DevServer]
) -> None:
    _, behind = servers
    before = _threads(behind)
    with GrpcProxy(behind.addresses.grpc, pool=renumbered_text_pool(OFFSET), reflection_on=False) as shim:
        result = _session(suite, shim.target, behind, "--scriptum-version=4")
        calls = dict(_stats(behind).calls)

    assert result.ret == 20, result.stdout.str()
    out = result.stdout.str()
    assert "wire mismatch" in out and "descriptors: bundled" in out
    assert "verdict: INCONCLUSIVE" in out
    assert not {"CreateThread", "TestScriptDraft", "RollbackScript", "PublishScriptDraft"} & set(calls), calls
    assert _threads(behind) == before  # no thread ran, on any version
    assert _active(behind) == 4
