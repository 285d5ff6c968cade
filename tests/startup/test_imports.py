"""DESIGN section 6 (issue 18): a session that selects no smoke test imports no grpc, httpx,
protobuf or jsonschema code — in every inner process (the single one, or the xdist controller
and its workers), read from ``sys.modules`` at unconfigure (``kit.probe``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kit import write_smoke_ini
from kit.probe import PROBE_CONFTEST, PROBE_DIR_ENV, modules_loaded
from kit.seeds.doubles import SCRIPT, smoke_suite, write_calc_seed

pytestmark = pytest.mark.slow  # real sessions, seconds each: scheduled first (tests/conftest.py)

TRANSPORT = ("grpc", "httpx", "google.protobuf", "jsonschema")
# The client's records: most of the plugin's own load time is building dataclasses.
RECORDS = "pytest_scriptum.client._records"


def _transport(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == t or m.startswith(t + ".") for t in TRANSPORT))


@pytest.fixture
def probe(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = pytester.path / "probe"
    monkeypatch.setenv(PROBE_DIR_ENV, str(directory))
    pytester.makeconftest(PROBE_CONFTEST)
    write_calc_seed(pytester.path / "seed")
    write_smoke_ini(pytester, script=SCRIPT, seed="seed")
    return directory


@pytest.mark.parametrize("workers", ["0", "2"])
@pytest.mark.parametrize("version", [None, "3"])
def test_a_session_without_smoke_tests_imports_no_transport_code(
    pytester: pytest.Pytester, probe: Path, workers: str, version: str | None
) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    args = ["-p", "no:cacheprovider", "-n", workers, "--scriptum-evidence=ev/b.json"]
    result = pytester.runpytest_subprocess(*args, *([f"--scriptum-version={version}"] if version else []))
    assert result.ret == (20 if version else 0), result.stdout.str()
    loaded = modules_loaded(probe)
    assert len(loaded) == (1 if workers == "0" else 3)  # every process reported
    for pid, modules in loaded.items():
        assert "pytest_scriptum.plugin" in modules  # the plugin was loaded and active
        assert _transport(modules) == [], pid
        assert RECORDS not in modules, pid


def test_a_smoke_session_does_import_them(pytester: pytest.Pytester, probe: Path) -> None:
    # The probe can see an import: with a smoke test selected the client is loaded.
    pytester.makepyfile(test_smoke=smoke_suite(1))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--scriptum-version=3")
    assert result.ret == 0, result.stdout.str()
    (modules,) = modules_loaded(probe).values()
    assert "grpc" in modules and RECORDS in modules
    # ... but nothing its run does not use (issue 18, memory): no httpx on the gRPC transport, and no
    # jsonschema or regex engine for a smoke test that declares no schema or pattern.
    assert not {"httpx", "jsonschema", "referencing", "regex"} & set(modules), sorted(modules)
