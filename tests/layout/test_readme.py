"""Every code block of README.md runs as written (issue 14), so the README cannot drift from the
product: the tutorial's files are written and its commands run against the embedded server, the
example's commands run on a copy of the example suite, the real-endpoint commands and the CI
recipes run against a server started for them, the hand-started server block is started and
queried with the README's own grpcurl and curl lines. How blocks are read: ``kit.readme``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kit.constants import EXAMPLE_SUITE, ORG, REPO, TOKEN
from kit.readme import Block, Command, blocks, commands, indented_code_lines, missing_lines, tutorial_files
from kit.sessions import wait_all

from pytest_scriptum.devserver import DevServerProcess

pytestmark = pytest.mark.slow

ALL = blocks()
BIN = Path(sys.executable).parent
# What the README's remote-endpoint commands export; the tests point them at a local server.
ENDPOINT_VARS = (
    "DODIL_TOKEN",
    "SCRIPTUM_TOKEN",
    "SCRIPTUM_API_ENDPOINT",
    "SCRIPTUM_ENDPOINT",
    "SCRIPTUM_HTTP_URL",
    "SCRIPTUM_ORG_ID",
)


def _of(kind: str, place: str | None = None) -> list[Block]:
    return [b for b in ALL if b.kind == kind and (place is None or b.attrs.get("in", "tutorial") == place)]


def _base_env(tmp: Path) -> dict[str, str]:
    env = {
        "PATH": f"{BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTEST_ADDOPTS": "-p no:cacheprovider",
    }
    if "PYTHONPATH" in os.environ:  # a checkout under test that is not the installed one
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def _run(command: Command, cwd: Path, env: dict[str, str], where: str, exports: list[str]) -> str:
    script = "\n".join([*exports, command.text])
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    context = f"{where} (line {command.line}): $ {command.text}\n--- output ---\n{output[-4000:]}"
    assert done.returncode == command.expected_exit, (
        f"exit {done.returncode}, expected {command.expected_exit}: {context}"
    )
    missing = missing_lines(command.expected, output)
    assert not missing, f"expected line not printed: {missing[0]!r}: {context}"
    return output


def _run_block(block: Block, cwd: Path, env: dict[str, str], overrides: dict[str, str] | None = None) -> None:
    exports: list[str] = []
    for command in commands(block):
        if command.text.startswith("export "):
            exports.append(command.text)
            if overrides:  # the README's value stands for the real platform's: ours replaces it
                exports += [f"export {k}={v}" for k, v in overrides.items()]
            continue
        _run(command, cwd, env, block.where, exports)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    target = tmp_path / "invoice_parser"
    shutil.copytree(
        EXAMPLE_SUITE, target, ignore=shutil.ignore_patterns("evidence", ".pytest_cache", "__pycache__")
    )
    return target


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevServerProcess]:
    """A server seeded like the example suite, standing in for the platform's endpoint."""
    with DevServerProcess(
        data_dir=tmp_path / "data", seed=EXAMPLE_SUITE / "seed", token=TOKEN, org=ORG
    ) as proc:
        proc.start()
        yield proc


def _overrides(server: DevServerProcess) -> dict[str, str]:
    addresses = server.addresses
    return {
        "DODIL_TOKEN": TOKEN,
        "SCRIPTUM_API_ENDPOINT": addresses.grpc,
        "SCRIPTUM_ENDPOINT": addresses.grpc,
        "SCRIPTUM_HTTP_URL": addresses.http,
        "SCRIPTUM_ORG_ID": ORG,
    }


def test_every_code_block_is_of_a_checked_kind() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    unknown = [f"{b.where}: {b.kind}" for b in ALL if b.kind.startswith("unknown")]
    assert not unknown, f"README blocks no test runs: {unknown}"
    assert not indented_code_lines(text), (
        f"indented (unfenced) code at README.md lines {indented_code_lines(text)}"
    )
    assert _of("file") and _of("console") and _of("python run") and _of("ci"), "a block kind vanished"


def test_the_two_commands_at_the_top_are_the_main_job_and_what_ci_runs(tmp_path: Path) -> None:
    top = ALL[0]
    assert top.kind == "console" and top.attrs.get("in") == "repo" and "setup" in top.flags, top.where
    main_job, test_suite = commands(top)
    prefix = "python3 -m venv .venv && .venv/bin/pip install -q -e "
    assert main_job.text.startswith(prefix + ". && ") and test_suite.text.startswith(prefix + "'.[test]' && ")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_command = test_suite.text.rsplit(" && ", 1)[1]
    assert test_command in ci.splitlines(), f"{top.where}: .ci/run does not run {test_command!r}"
    assert "pip install -q -e '.[test,lint]'" in ci  # the test extra, plus the static checks' tools

    # The main job itself (a fresh venv with only `pip install .` is tests/distribution's).
    job = main_job.text.rsplit(" && ", 1)[1].replace(".venv/bin/python", sys.executable)
    assert job.startswith(sys.executable + " -m pytest example_suites/invoice_parser")
    evidence = tmp_path / "evidence" / "scriptum.json"
    done = subprocess.run(
        [*job.split(), f"--scriptum-evidence={evidence}"],
        cwd=REPO,
        env=_base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    # The README's words right below the commands: three smoke tests fail, rolled back to 3, exit 1.
    assert done.returncode == 1, done.stdout[-3000:]
    assert "3 failed" in done.stdout and "rollback: rolled_back_verified" in done.stdout, done.stdout[-3000:]


def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    project = tmp_path / "tutorial"
    for path, text in tutorial_files(ALL).items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text, encoding="utf-8")
    env = _base_env(tmp_path)
    ran = 0
    for block in ALL:
        if block.kind == "console" and block.attrs.get("in", "tutorial") == "tutorial":
            _run_block(block, project, env)
            ran += 1
        elif block.kind == "python run":
            script = tmp_path / f"readme_{block.line}.py"
            script.write_text(block.body, encoding="utf-8")
            done = subprocess.run(
                [sys.executable, str(script)], cwd=project, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, f"{block.where}: {done.stdout}{done.stderr}"
            ran += 1
    assert ran >= 3


@pytest.mark.parametrize("block", _of("console", "example"), ids=lambda b: f"line{b.line}")
def test_example_commands_run_as_written(block: Block, example: Path, tmp_path: Path) -> None:
    _run_block(block, example, _base_env(tmp_path))


@pytest.mark.parametrize("block", _of("console", "endpoint"), ids=lambda b: f"line{b.line}")
def test_remote_endpoint_commands_run_against_a_server(
    block: Block, example: Path, tmp_path: Path, server: DevServerProcess
) -> None:
    # The example's ini says `embedded`; the exported endpoint must win over it (env beats ini).
    exported = {c.text.split()[1].split("=")[0] for c in commands(block) if c.text.startswith("export ")}
    assert exported <= set(ENDPOINT_VARS), exported
    _run_block(block, example, _base_env(tmp_path), overrides=_overrides(server))


@pytest.mark.parametrize("block", _of("ci"), ids=lambda b: b.attrs["ci"])
def test_ci_recipes_run_their_gate(
    block: Block, example: Path, tmp_path: Path, server: DevServerProcess
) -> None:
    recipe = yaml.safe_load(block.body)
    if block.attrs["ci"] == "github":
        steps = recipe if isinstance(recipe, list) else recipe["steps"]
        gate = next(step for step in steps if "pytest" in step.get("run", ""))
        command, variables = gate["run"], gate.get("env", {})
        archive = next(step for step in steps if "upload-artifact" in step.get("uses", ""))
        assert archive["if"] == "always()" and archive["with"]["path"] == "evidence/"
    else:
        (job,) = recipe.values()
        (command,) = [line for line in job["script"] if "pytest" in line]
        variables = job.get("variables", {})
        assert job["artifacts"]["when"] == "always" and "evidence/" in job["artifacts"]["paths"]
    assert set(variables) <= set(ENDPOINT_VARS), variables
    env = {**_base_env(tmp_path), **{k: str(v) for k, v in variables.items()}, **_overrides(server)}
    done = subprocess.run(
        ["bash", "-c", command], cwd=example, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1, f"{block.where}: {done.stdout[-3000:]}{done.stderr[-2000:]}"
    assert "candidate: invoice-parser v4 at endpoint 127.0.0.1:" in done.stdout, done.stdout[-3000:]
    for name in ("junit.xml", "scriptum.json", "allure"):
        assert (example / "evidence" / name).exists(), name


def test_repo_commands_run_as_written(tmp_path: Path) -> None:
    repo_blocks = [b for b in _of("console", "repo") if "setup" not in b.flags]
    assert repo_blocks
    for block in repo_blocks:
        _run_block(block, REPO, _base_env(tmp_path))


def test_the_hand_started_server_answers_the_readme_calls(tmp_path: Path) -> None:
    """The README starts `scriptum-devserver` in the foreground and calls it from another terminal;
    here it runs in the background, and the ports its ready line shows in the README are replaced
    by the real ones in the later commands."""
    env = _base_env(tmp_path)
    exports: list[str] = []
    ports: dict[str, str] = {}
    proc: subprocess.Popen[str] | None = None
    ran = 0
    try:
        for block in _of("console", "devserver"):
            for command in commands(block):
                if command.text.startswith("export "):
                    exports.append(command.text)
                    continue
                if command.text.startswith("scriptum-devserver "):
                    text = command.text.replace("./.scriptum-data", str(tmp_path / "data"))
                    proc = subprocess.Popen(
                        ["bash", "-c", "\n".join([*exports, "exec " + text])],
                        cwd=REPO,
                        env=env,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                        text=True,
                    )
                    assert proc.stdout is not None
                    ready = proc.stdout.readline().strip()
                    assert not missing_lines(
                        [re.sub(r":\d+", ":...", line) for line in command.expected], ready
                    ), ready
                    shown = re.findall(r":(\d+)", " ".join(command.expected))
                    real = re.findall(r":(\d+)", ready)
                    assert len(shown) == len(real) == 2, (shown, ready)
                    ports = dict(zip(shown, real, strict=True))
                    continue
                assert proc is not None, f"{block.where}: a call before the server was started"
                for shown_port, real_port in ports.items():
                    command.text = command.text.replace(f":{shown_port}", f":{real_port}")
                _run(command, REPO, env, block.where, exports)
                ran += 1
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    assert ran >= 2
    assert proc is not None and proc.returncode == 0, "the server did not stop cleanly on SIGTERM"


def _gha(text: str, values: dict[str, str]) -> str:
    """A GitHub Actions expression-substituted string: ``${{ matrix.shard }}`` -> ``values[...]``."""
    return re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", lambda m: values[m.group(1)], text)


def _run_matrix(jobs: dict[str, tuple[str, dict[str, str]]], cwd: Path, where: str) -> None:
    """A CI matrix's jobs (``{name: (bash script, env)}``), all started at once as the CI service
    starts them; each must exit 0. Killed if still running when one fails its wait."""
    running = {
        name: subprocess.Popen(
            ["bash", "-c", script], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        for name, (script, env) in jobs.items()
    }
    wait_all(running, where)


@pytest.mark.parametrize("block", _of("ci-sharded"), ids=lambda b: b.attrs["ci"])
def test_sharded_ci_recipes_gate_once(
    block: Block, example: Path, tmp_path: Path, server: DevServerProcess
) -> None:
    """Each shard job's commands run as the matrix runs them, all at once against one server;
    then the merge job's command. Installation lines are the CI image's business."""
    recipe = yaml.safe_load(block.body)
    env = {**_base_env(tmp_path), **_overrides(server)}
    if block.attrs["ci"] == "github-sharded":
        smoke, gate = recipe["jobs"]["smoke"], recipe["jobs"]["gate"]
        assert gate["needs"] == "smoke" and gate["if"] == "always()"
        shards = smoke["strategy"]["matrix"]["shard"]
        (shard_run,) = [step["run"] for step in smoke["steps"] if step.get("run", "").startswith("pytest ")]
        (merge_run,) = [step["run"] for step in gate["steps"] if "scriptum-gate" in step.get("run", "")]
        jobs = {
            f"shard {shard}": (_gha(shard_run, {"matrix.shard": str(shard), "inputs.candidate": "4"}), env)
            for shard in shards
        }
        _run_matrix(jobs, example, block.where)
        # actions/download-artifact with merge-multiple: every shard's evidence/ into shards/
        (example / "shards").mkdir()
        for bundle in (example / "evidence").glob("shard-*.json"):
            shutil.copy(bundle, example / "shards" / bundle.name)
        merge = merge_run
    else:
        smoke, gate = recipe["smoke"], recipe["gate"]
        assert gate["needs"] == ["smoke"] and gate["when"] == "always"
        lines = [line for line in smoke["script"] if not line.startswith("pip install")]
        script = "set -e\n" + "\n".join(lines)
        jobs = {
            f"shard {index}": (
                script,
                {**env, "CI_NODE_INDEX": str(index), "CI_NODE_TOTAL": str(smoke["parallel"]),
                 "CANDIDATE": "4"},
            )
            for index in range(1, smoke["parallel"] + 1)
        }
        _run_matrix(jobs, example, block.where)
        (merge,) = [line for line in gate["script"] if "scriptum-gate" in line]
    done = subprocess.run(
        ["bash", "-c", merge], cwd=example, env=env, capture_output=True, text=True, timeout=600
    )
    # v4 is the example's regression: one rollback for the whole matrix, verified -> exit 1.
    assert done.returncode == 1, f"{block.where}: {done.stdout[-3000:]}{done.stderr[-2000:]}"
    history = [line for line in done.stdout.splitlines() if "rollback:" in line]
    assert any("rolled_back_verified" in line for line in history), done.stdout[-3000:]
    assert (example / "evidence" / "scriptum.json").is_file() and (
        example / "evidence" / "junit.xml"
    ).is_file()
