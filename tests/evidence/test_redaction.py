"""Redaction: the bearer token and env values never reach the terminal, logs, JUnit, Allure files,
bundles or the verification log, for a remote endpoint and for the embedded server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kit import TOKEN
from kit.evidence import every_file, read_valid_bundle
from kit.seeds.sums import SUITE, TENANT_ENV, write_calc_seed

from pytest_scriptum.devserver import DevServer

ENV_MARKER = "env-value-marker-5a0b93d1c6"
OVERLAY_MARKER = "overlay-marker-77e2c0a4"

EVIDENCE_ARGS = (
    "--scriptum-version=2",
    "--scriptum-incident=INC-9",
    "--scriptum-require-env=API_SECRET,DB_HOST",
    "--junitxml=evidence/junit.xml",
    "--alluredir=evidence/allure",
    "--scriptum-evidence=evidence/scriptum.json",
    "-rA",
    "-v",
    "--log-level=DEBUG",
    "--log-cli-level=DEBUG",
    "-p",
    "no:cacheprovider",
)


def _assert_nowhere(secrets: list[str], result: pytest.RunResult, evidence: Path) -> None:
    texts = {"stdout": result.stdout.str(), "stderr": result.stderr.str()}
    files = list(every_file(evidence))
    # The run must have left every kind of evidence, or "not found" would prove nothing.
    names = {p.name for p in files}
    assert {"junit.xml", "junit.verification-v1.xml", "scriptum.json", "verification-v1.json"} <= names
    assert {"verification-v1.log", "environment.properties", "executor.json"} <= names
    assert sum(p.name.endswith("-attachment.json") for p in files) > 10
    for path in files:
        texts[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    for secret in secrets:
        leaks = [where for where, text in texts.items() if secret in text]
        assert not leaks, f"{secret!r} leaked into {leaks}"


def test_remote_endpoint_never_shows_token_or_env_values(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = write_calc_seed(tmp_path / "seed", {"API_SECRET": ENV_MARKER, "DB_HOST": "db.redaction.invalid"})
    overlay = seed / "scripts" / "calc" / "script.yaml"
    overlay.write_text(f"active: 2\nenv:\n  MODE: {OVERLAY_MARKER}\n")
    server = DevServer(data_dir=tmp_path / "data", seed=seed, principals={TOKEN: "org-r"})
    addresses = server.start()
    try:
        pytester.makepyfile(test_calc=SUITE)
        monkeypatch.setenv("DODIL_TOKEN", TOKEN)
        result = pytester.runpytest(
            f"--scriptum-endpoint={addresses.grpc}",
            f"--scriptum-http-url={addresses.http}",
            "--scriptum-org=org-r",
            "--scriptum-script=calc",
            *EVIDENCE_ARGS,
        )
    finally:
        server.stop()
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["rollback: rolled_back_verified*"])
    bundle = read_valid_bundle(pytester.path / "evidence" / "scriptum.json")
    assert bundle["endpoint"] == addresses.grpc  # a remote endpoint is named as it is
    # The handler saw the env (it reports that the secret is configured) but never its value.
    assert bundle["preflight"]["ok"] and "API_SECRET" in bundle["preflight"]["effective_env_keys"]
    _assert_nowhere([TOKEN, ENV_MARKER, OVERLAY_MARKER], result, pytester.path / "evidence")


def test_embedded_server_never_shows_its_session_token(pytester: pytest.Pytester, seed_dir: Path) -> None:
    shutil.copytree(seed_dir, pytester.path / "seed")
    pytester.makepyfile(test_calc=SUITE)
    # Learn the random per-session token the way no user can: from the plugin's own state.
    pytester.makeconftest(
        """
        import pytest
        from pytest_scriptum.plugin import _ROLE

        @pytest.hookimpl(trylast=True)
        def pytest_sessionfinish(session):
            resources = session.config.stash[_ROLE].resources
            if resources.cfg.verification_of is None and not hasattr(session.config, "workerinput"):
                with open("session-token.txt", "w") as out:
                    out.write(resources.connection.token)
        """
    )
    result = pytester.runpytest(
        "--scriptum-endpoint=embedded", "--scriptum-seed=seed", "--scriptum-script=calc", *EVIDENCE_ARGS
    )
    assert result.ret == 1, result.stdout.str()
    token = (pytester.path / "session-token.txt").read_text()
    assert len(token) >= 32
    bundle = read_valid_bundle(pytester.path / "evidence" / "scriptum.json")
    assert bundle["endpoint"] == "embedded"
    environment = pytester.path / "evidence" / "allure" / "environment.properties"
    assert "scriptum.endpoint=embedded" in environment.read_text()
    _assert_nowhere([token, *TENANT_ENV.values()], result, pytester.path / "evidence")
