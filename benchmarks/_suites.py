"""The seed and the generated pytest suites that run_all.py times.

Every suite is a directory with its own pytest.ini, so each benchmark is one plain
``pytest`` subprocess and nothing from the repository's own conftest leaks in.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

__all__ = [
    "FAIL_FAST_SCRIPT",
    "SLEEPY_SCRIPT",
    "TRIVIAL_SCRIPT",
    "write_direct_suite",
    "write_plugin_suite",
    "write_seed",
]

SLEEPY_SCRIPT = "sleepy"
FAIL_FAST_SCRIPT = "failfast"
TRIVIAL_SCRIPT = "trivial"  # the name bench_server.py runs

# Sleeps as long as the case asks (the platform's latency), then echoes the case id.
_SLEEPY = """
import time

def handler(event, context):
    time.sleep(event["sleep"])
    return {"id": event["id"]}
"""

# The candidate of the fail-fast benchmark: case 0 answers wrongly (the regression).
_FAIL_FAST_CANDIDATE = """
import time

def handler(event, context):
    time.sleep(event["sleep"])
    return {"id": -1 if event["id"] == 0 else event["id"]}
"""

# The known-good version the fail-fast run rolls back to: answers at once.
_FAIL_FAST_GOOD = """
def handler(event, context):
    return {"id": event["id"]}
"""

_PYTEST_INI = "[pytest]\naddopts = -p no:cacheprovider -q\n"


def write_seed(root: Path, trivial_handler: str) -> Path:
    """A seed dir: ``sleepy`` v1..v2 (v2 active), ``failfast`` v1 good / v2 active and bad, ``trivial``."""
    scripts = {
        SLEEPY_SCRIPT: {1: _SLEEPY, 2: _SLEEPY},
        FAIL_FAST_SCRIPT: {1: _FAIL_FAST_GOOD, 2: _FAIL_FAST_CANDIDATE},
        TRIVIAL_SCRIPT: {1: trivial_handler},
    }
    (root / "tenant.env").parent.mkdir(parents=True, exist_ok=True)
    (root / "tenant.env").write_text("DB_HOST=db.bench.invalid\n")
    for name, versions in scripts.items():
        for number, source in versions.items():
            vdir = root / "scripts" / name / f"v{number}"
            vdir.mkdir(parents=True)
            (vdir / "handler.py").write_text(textwrap.dedent(source).lstrip())
        (root / "scripts" / name / "script.yaml").write_text(f"active: {max(versions)}\n")
    return root


def _cases(count: int, sleep_s: float) -> list[dict[str, object]]:
    return [{"id": i, "sleep": sleep_s} for i in range(count)]


def write_plugin_suite(root: Path, script: str, count: int, sleep_s: float, conftest: str = "") -> Path:
    """A smoke suite as users write it: one ``smoke_cases`` test over ``count`` case files."""
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text(_PYTEST_INI)
    cases = root / "cases"
    cases.mkdir()
    for event in _cases(count, sleep_s):
        case = {"id": f"case{event['id']:04d}", "input": event, "expect": {"output": {"id": event["id"]}}}
        (cases / f"case{event['id']:04d}.json").write_text(json.dumps(case))
    (root / "test_smoke.py").write_text(
        textwrap.dedent(
            f"""
            import pytest

            pytestmark = pytest.mark.scriptum({script!r})


            @pytest.mark.smoke_cases("cases/*.json")
            def test_case():
                pass
            """
        ).lstrip()
    )
    if conftest:
        (root / "conftest.py").write_text(textwrap.dedent(conftest).lstrip())
    return root


def write_direct_suite(root: Path, script: str, version: int, count: int, sleep_s: float) -> Path:
    """The baseline: a plain pytest file on the generated gRPC stub, one case after another.

    What a team writes without the plugin against the documented API: ``CreateThread`` pinned to
    ``version`` with ``input_json`` and ``load_env``, follow the thread with the ``WatchThread``
    stream until it is terminal, then ``GetThreadResult``; assert COMPLETED, the version and the
    output. The file is generated with the case list inlined, so collection does no file I/O.
    """
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text(_PYTEST_INI)
    (root / "test_direct.py").write_text(
        textwrap.dedent(
            f"""
            import json
            import os

            import grpc
            import pytest

            from pytest_scriptum._proto import scriptum_pb2 as pb
            from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc

            CASES = {_cases(count, sleep_s)!r}


            @pytest.fixture(scope="session")
            def stub():
                with grpc.insecure_channel(os.environ["SCRIPTUM_ENDPOINT"]) as channel:
                    yield pb_grpc.ScriptumServiceStub(channel)


            @pytest.fixture(scope="session")
            def metadata():
                return (
                    ("authorization", "Bearer " + os.environ["DODIL_TOKEN"]),
                    ("x-organization-id", os.environ["SCRIPTUM_ORG_ID"]),
                )


            def run_pinned(stub, metadata, event):
                created = stub.CreateThread(
                    pb.CreateThreadRequest(
                        script_name={script!r}, version={version}, input_json=json.dumps(event),
                        load_env=True, timeout="60s",
                    ),
                    metadata=metadata,
                    timeout=70.0,
                )
                # The stream ends after the event whose thread is terminal (or paused).
                thread = None
                watch = pb.WatchThreadRequest(thread_id=created.thread_id)
                for change in stub.WatchThread(watch, metadata=metadata, timeout=70.0):
                    thread = change.thread
                result = stub.GetThreadResult(
                    pb.GetThreadResultRequest(thread_id=created.thread_id), metadata=metadata, timeout=70.0
                )
                return thread, result


            @pytest.mark.parametrize("event", CASES, ids=[f"case{{c['id']:04d}}" for c in CASES])
            def test_case(stub, metadata, event):
                thread, result = run_pinned(stub, metadata, event)
                assert thread.status == pb.THREAD_STATUS_COMPLETED, (thread.error_code, thread.error)
                assert thread.version == {version} and result.version == {version}
                assert json.loads(result.output_data) == {{"id": event["id"]}}
            """
        ).lstrip()
    )
    return root
