"""Version drift is an error (the platform's fault), never a candidate failure.

The outer test starts a real DevServer whose thread answers (CreateThread, GetThread, WatchThread,
GetThreadResult) report the pinned version plus one; the inner session points at it as a remote
endpoint with the token in ``DODIL_TOKEN``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import ORG, TOKEN, outcomes
from kit.seeds.shop import SHOP, write_shop_seed

from pytest_scriptum._proto import scriptum_pb2
from pytest_scriptum.devserver import DevServer, ServerAddresses

SUITE = """
import pytest


@pytest.mark.smoke_input({"kind": "small"})
@pytest.mark.smoke_expect({"n": 1})
def test_marker_run(smoke_thread):
    pass


@pytest.mark.smoke_input({"kind": "small"})
def test_marker_run_empty_body():
    pass


def test_runner_run(scriptum_runner):
    scriptum_runner.run({"kind": "small"})
"""


@pytest.fixture
def drifting_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerAddresses]:
    monkeypatch.setenv("DODIL_TOKEN", TOKEN)
    server = DevServer(
        data_dir=tmp_path / "data",
        seed=write_shop_seed(tmp_path / "seed"),
        principals={TOKEN: ORG},
        faults=scriptum_pb2.Faults(version_skew=1),
    )
    try:
        yield server.start()
    finally:
        server.stop()


def test_version_drift_is_an_error_not_a_failure(
    pytester: pytest.Pytester, drifting_server: ServerAddresses
) -> None:
    pytester.makepyfile(test_shop_drift=SUITE)
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "-rA",
        "--scriptum-version=3",
        f"--scriptum-script={SHOP}",
        f"--scriptum-endpoint={drifting_server.grpc}",
        f"--scriptum-http-url={drifting_server.http}",
        f"--scriptum-org={ORG}",
    )
    found = outcomes(result)
    assert found["test_shop_drift.py::test_marker_run"] == "error", result.stdout.str()
    assert found["test_shop_drift.py::test_marker_run_empty_body"] == "error"
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_marker_run *",
            "*version drift: the run was pinned to shop v3 but the platform reported shop v4 (thread *)*",
        ]
    )
    # one clear message per error, not the platform exception chained under the plugin's own
    assert "During handling of the above exception" not in result.stdout.str()
    # Drift in an imperative run inside the test body is the platform's fault too: an error.
    assert found["test_shop_drift.py::test_runner_run"] == "error"
    # Platform errors over the (zero) budget: the gate cannot decide and rolls nothing back.
    result.stdout.fnmatch_lines(["verdict: INCONCLUSIVE - 3 errors > allowed 0: *"])
    assert result.ret == 20
    assert TOKEN not in result.stdout.str() + result.stderr.str()
