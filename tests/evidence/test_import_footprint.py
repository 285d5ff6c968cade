"""Reading evidence loads nothing of the plugin: ``import pytest_scriptum.evidence`` (what
``python -X importtime -c "import pytest_scriptum.evidence"`` times) and reading a bundle with
``read_bundle`` load the standard library and jsonschema only, never grpc, httpx, pytest or a
module of the session layer. Each check runs in a fresh interpreter and reads its ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kit.evidence import read_valid_bundle

from pytest_scriptum.evidence import build_bundle
from pytest_scriptum.gate import GateConfig, GateCounts, Verdict
from pytest_scriptum.outcome import SessionOutcome

# Whatever the plugin's process loads and a reader of evidence must not.
NEVER = ("grpc", "httpx", "google", "pytest", "_pytest", "xdist", "allure", "allure_commons", "lark", "yaml")
NEVER_OURS = (
    "pytest_scriptum.plugin",
    "pytest_scriptum._session",
    "pytest_scriptum.client",
    "pytest_scriptum.runner",
    "pytest_scriptum.markers",
    "pytest_scriptum.devserver",
    "pytest_scriptum._proto",
    "pytest_scriptum._options",
    "pytest_scriptum._compat",
)


def _loaded_by(code: str) -> set[str]:
    """The modules a fresh interpreter loads while it runs ``code``."""
    script = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def _top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def _foreign(modules: set[str], allowed: set[str]) -> set[str]:
    """Top-level packages that are neither the standard library nor ``allowed``."""
    return {top for top in _top_level(modules) if top not in sys.stdlib_module_names and top not in allowed}


def _assert_plugin_free(modules: set[str]) -> None:
    assert not {m for m in modules if m.split(".")[0] in NEVER}, sorted(modules)
    assert not {m for m in modules if m.startswith(NEVER_OURS)}, sorted(modules)


def test_importing_the_evidence_package_loads_only_the_standard_library() -> None:
    loaded = _loaded_by("import pytest_scriptum.evidence")
    _assert_plugin_free(loaded)
    assert _foreign(loaded, {"pytest_scriptum"}) == set(), sorted(loaded)
    ours = {m for m in loaded if m.startswith("pytest_scriptum")}
    assert ours <= {
        "pytest_scriptum",
        "pytest_scriptum.evidence",
        "pytest_scriptum.evidence.bundle",
        "pytest_scriptum.evidence.redaction",
        "pytest_scriptum.evidence._files",
    }, sorted(ours)


def test_reading_a_bundle_loads_jsonschema_and_nothing_of_the_plugin(tmp_path: Path) -> None:
    verdict = Verdict("pass", "passed 1 of 1", GateCounts(passed=1), GateConfig())
    outcome = SessionOutcome(
        script="calc",
        candidate_version=2,
        endpoint="embedded",
        transport="grpc",
        started_at="2026-01-01T00:00:00.000Z",
        finished_at="2026-01-01T00:00:01.000Z",
        verdict=verdict,
        exit_code=0,
    )
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(build_bundle(outcome)))
    read_valid_bundle(path)  # the bundle itself is valid: a failure below is about imports only

    # What validating any bundle needs: jsonschema and the packages it loads itself.
    jsonschema_needs = _top_level(
        _loaded_by(
            "import jsonschema\n"
            "from importlib import resources\n"
            "schema = json.loads(resources.files('pytest_scriptum.evidence').joinpath('bundle.schema.json')"
            ".read_text())\n"
            "list(jsonschema.Draft202012Validator(schema).iter_errors({}))"
        )
    )
    loaded = _loaded_by(
        "from pytest_scriptum.evidence import read_bundle, validate_bundle\n"
        f"validate_bundle(read_bundle({str(path)!r}))"
    )
    _assert_plugin_free(loaded)
    assert "jsonschema" in _top_level(loaded)
    assert _foreign(loaded, {"pytest_scriptum", *jsonschema_needs}) == set(), sorted(loaded)
