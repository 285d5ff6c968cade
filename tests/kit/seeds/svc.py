"""The concurrency tests' ``svc`` script: a DevServer on loopback seeded with the versions a test
gives (the highest one active), whose counters the outer test reads; case files for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from kit.constants import ORG, TOKEN
from kit.platform import Platform
from kit.seeds import write_seed
from pytest_scriptum.devserver import DevServer

__all__ = ["CANDIDATE", "CASES_TEST", "SCRIPT", "StartPlatform", "start_svc_platform", "write_cases"]

SCRIPT = "svc"
CANDIDATE = 2  # v1 is the known-good rollback target, v2 the (active) candidate


def start_svc_platform(root: Path, versions: Mapping[int, str]) -> Platform:
    """Start a DevServer under ``root`` seeded with ``svc`` at ``versions`` (the highest one active)."""
    seed = write_seed(
        root / "seed",
        script=SCRIPT,
        versions=versions,
        active=max(versions),
        tenant_env={"DB_HOST": "db.speed.invalid"},
    )
    server = DevServer(data_dir=root / "data", seed=seed, principals={TOKEN: ORG})
    server.start()
    return Platform.of(server, token=TOKEN, org=ORG, script=SCRIPT, version=CANDIDATE)


def write_cases(directory: Path, events: list[dict[str, object]], expected: list[object]) -> None:
    """One smoke case file per event, ids ``c00``, ``c01``, ... (so collection order is the list order)."""
    directory.mkdir(parents=True)
    for index, (event, output) in enumerate(zip(events, expected, strict=True)):
        case = {"id": f"c{index:02d}", "input": event, "expect": {"output": output, "match": "exact"}}
        (directory / f"c{index:02d}.json").write_text(json.dumps(case))


CASES_TEST = """
import pytest

pytestmark = pytest.mark.scriptum("svc")


@pytest.mark.smoke_cases("cases/*.json")
def test_case(smoke_thread):
    pass
"""


StartPlatform = Callable[[Mapping[int, str]], Platform]
