"""Large outputs (DESIGN section 6, memory): a finished run's output of at least
``LARGE_OUTPUT_BYTES`` that no test has taken yet waits on disk, not in memory; it reaches its
test whole; nothing is left behind. Against the real dev server over loopback gRPC and HTTP.
Peak memory itself is measured by ``benchmarks/bench_issue18.py memory``, not here.
"""

from __future__ import annotations

import concurrent.futures
import stat
import tempfile
from pathlib import Path

import pytest
from kit.constants import ORG, TOKEN
from kit.seeds.svc import CANDIDATE, SCRIPT, StartPlatform

from pytest_scriptum import _memory
from pytest_scriptum._limits import LARGE_OUTPUT_BYTES
from pytest_scriptum.client import ClientSettings, connect
from pytest_scriptum.runner import Dispatcher, PinnedRunner, RunRequest

GOOD_SOURCE = """
def handler(event, context):
    return {"id": event["id"]}
"""
# A padded output: over the server's 4 MiB unary cap it is streamed (StreamThreadResult).
BIG_SOURCE = """
def handler(event, context):
    return {"id": event["id"], "pad": "x" * event["bytes"]}
"""
SIZES = [LARGE_OUTPUT_BYTES + 10, 5 * 1024 * 1024, 100]  # spooled, spooled and streamed, kept


@pytest.fixture
def spool_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    parent = tmp_path / "tmp"
    parent.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(parent))
    return parent


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_finished_large_outputs_wait_on_disk_until_their_test_takes_them(
    start_platform: StartPlatform, spool_parent: Path, transport: str
) -> None:
    platform = start_platform({1: GOOD_SOURCE, CANDIDATE: BIG_SOURCE})
    settings = ClientSettings(
        endpoint=platform.grpc, http_url=platform.http, org=ORG, token=TOKEN, transport=transport  # type: ignore[arg-type]
    )
    client = connect(settings)
    dispatcher = Dispatcher(PinnedRunner(client, version=CANDIDATE, script=SCRIPT, timeout=60.0), 4)
    try:
        dispatcher.submit_all(
            (f"case{i}", RunRequest(input={"id": i, "bytes": size})) for i, size in enumerate(SIZES)
        )
        # Every run finished and was handed back by its pool thread; no test has asked yet (the
        # futures are private: there is no public "finished but not taken" to wait on).
        futures = [future for future, _ in dispatcher._runs.values()]
        done, _ = concurrent.futures.wait(futures, timeout=60)
        assert len(done) == len(SIZES)

        (spool,) = spool_parent.glob("scriptum-spool-*")
        assert stat.S_IMODE(spool.stat().st_mode) == 0o700
        files = sorted(spool.iterdir())
        assert len(files) == 2  # the two large outputs; the small one stays in memory
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)

        for i, size in enumerate(SIZES):
            result = dispatcher.result(f"case{i}")
            assert result.output == {"id": i, "pad": "x" * size}
            assert result.output_bytes > size  # the platform's size of the JSON text
        assert list(spool.iterdir()) == []  # each file went with its result
    finally:
        dispatcher.close()
        client.close()
    assert list(spool_parent.iterdir()) == []  # the spool directory went with the dispatcher


def test_a_session_with_large_outputs_passes_and_leaves_no_spool_behind(
    pytester: pytest.Pytester, start_platform: StartPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = start_platform({1: GOOD_SOURCE, CANDIDATE: BIG_SOURCE})
    pytester.makepyfile(
        test_big=f"""
        import pytest

        pytestmark = pytest.mark.scriptum("svc")

        @pytest.mark.smoke_input({{"id": 1, "bytes": {SIZES[1]}}})
        def test_streamed(smoke_thread):
            assert smoke_thread.output["pad"] == "x" * {SIZES[1]}
            assert smoke_thread.output_bytes > {SIZES[1]}

        @pytest.mark.smoke_input({{"id": 2, "bytes": {SIZES[0]}}})
        def test_spoolable(smoke_thread):
            assert smoke_thread.output["pad"] == "x" * {SIZES[0]}
        """
    )
    temp = pytester.path / "session-tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    result = pytester.runpytest_subprocess(*platform.args())
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
    assert list(temp.glob("scriptum-spool-*")) == []


def test_freed_large_blocks_go_back_to_the_system_on_glibc() -> None:
    import os

    glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    assert _memory.keep_large_blocks_returnable() is glibc
    assert _memory.keep_large_blocks_returnable() is glibc  # idempotent


def test_a_spool_that_cannot_be_written_keeps_the_output_in_memory(
    start_platform: StartPlatform, spool_parent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk (ENOSPC) is injected at the spool's write: the finished run is kept, not lost.
    from pytest_scriptum import _output_spool

    def full_disk(self: object, output: object) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_output_spool.OutputSpool, "put", full_disk)
    platform = start_platform({1: GOOD_SOURCE, CANDIDATE: BIG_SOURCE})
    client = connect(ClientSettings(endpoint=platform.grpc, http_url=platform.http, org=ORG, token=TOKEN))
    dispatcher = Dispatcher(PinnedRunner(client, version=CANDIDATE, script=SCRIPT, timeout=60.0), 2)
    try:
        dispatcher.submit("big", RunRequest(input={"id": 7, "bytes": SIZES[0]}))
        (future, _), = dispatcher._runs.values()
        assert future.exception(timeout=60) is None
        assert dispatcher.result("big").output == {"id": 7, "pad": "x" * SIZES[0]}
    finally:
        dispatcher.close()
        client.close()
    assert list(spool_parent.iterdir()) == []
