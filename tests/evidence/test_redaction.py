"""Redaction: the bearer token and env values never reach the terminal, logs, JUnit, Allure files,
bundles or the verification log, for a remote endpoint and for the embedded server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kit import TOKEN
from kit.evidence import every_file, read_valid_bundle
from kit.seeds import write_seed
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


# -- a platform that echoes secrets back -------------------------------------------------------

ECHO_KEY = "echo-key-value-3c9d1e77"  # tenant OPENAI_API_KEY: secret by its name
ECHO_PASSWORD = "pw-8b2f7a0c"  # overlay DB_PASSWORD: secret by its name
# Both versions echo every env value they get: in the output, in a step's name; v2 also raises
# with them (and with UPSTREAM, the session's own token stored as an innocent-looking key).
_ECHO_HANDLER = """
    def handler(event, context):
        env = context.env or {{}}
        key, password, token = env["OPENAI_API_KEY"], env["DB_PASSWORD"], env["UPSTREAM"]
        with context.step("lookup " + key):
            total = event["a"] + event["b"]
        if {regressed} and event.get("boom"):
            raise RuntimeError("upstream refused " + token + " with " + key + " and " + password)
        if {regressed} and total >= 10:
            total -= 1
        return {{"sum": total, "echo": key, "password": password, "token": token, "model": env["MODEL"]}}
"""
ECHO_SUITE = """
import logging
import os

import pytest

pytestmark = pytest.mark.scriptum("calc")
KEY = os.environ["EXPECTED_KEY"]  # expectations compare the real value


@pytest.mark.smoke_input({"a": 2, "b": 3})
@pytest.mark.smoke_expect({"sum": 5, "echo": KEY, "model": "m1"})
def test_echo(smoke_thread):
    logging.getLogger("suite").warning("thread said %s", smoke_thread.output["token"])
    print("stdout:", smoke_thread.output["password"])
    assert smoke_thread.steps[0].name == "lookup " + KEY


@pytest.mark.smoke_input({"a": 20, "b": 30})
@pytest.mark.smoke_expect({"sum": 50, "echo": KEY})
def test_big(smoke_thread):
    assert smoke_thread.version != 2 or smoke_thread.output == {"sum": 50}


@pytest.mark.smoke_input({"a": 1, "b": 1, "boom": True})
@pytest.mark.smoke_expect({"sum": 2})
def test_boom(smoke_thread):
    pass


@pytest.mark.smoke_input({"a": 1, "b": 2})
def test_always_fails_showing_the_output(smoke_thread):
    logging.getLogger("suite").error("output: %r", smoke_thread.output)
    assert smoke_thread.output == {"echo": "not what came back"}
"""


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_secrets_echoed_by_the_platform_are_masked_in_every_file_and_stream(
    pytester: pytest.Pytester,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: tuple[str, ...],
) -> None:
    tenant = {"OPENAI_API_KEY": ECHO_KEY, "UPSTREAM": TOKEN, "API_SECRET": ENV_MARKER, "DB_HOST": "db"}
    seed = write_seed(
        tmp_path / "seed",
        script="calc",
        versions={1: _ECHO_HANDLER.format(regressed=False), 2: _ECHO_HANDLER.format(regressed=True)},
        active=2,
        overlay={"DB_PASSWORD": ECHO_PASSWORD, "MODEL": "m1"},
        tenant_env=tenant,
    )
    server = DevServer(data_dir=tmp_path / "data", seed=seed, principals={TOKEN: "org-r"})
    addresses = server.start()
    try:
        pytester.makepyfile(test_calc=ECHO_SUITE)
        (pytester.path / "evidence").mkdir()  # pytest opens the --debug file before anything runs
        monkeypatch.setenv("DODIL_TOKEN", TOKEN)
        monkeypatch.setenv("EXPECTED_KEY", ECHO_KEY)
        result = pytester.runpytest(
            f"--scriptum-endpoint={addresses.grpc}",
            f"--scriptum-http-url={addresses.http}",
            "--scriptum-org=org-r",
            "--scriptum-script=calc",
            "--scriptum-min-pass-rate=0.5",
            "--debug=evidence/pytestdebug.log",
            "--log-file=evidence/pytest.log",
            "--log-file-level=DEBUG",
            "--tb=long",
            "--showlocals",
            *workers,
            *EVIDENCE_ARGS,
        )
    finally:
        server.stop()
    evidence = pytester.path / "evidence"
    out = result.stdout.str()
    # The candidate failed (3 of 4 failed), v1 passed its re-run (3 of 4): every writer ran.
    assert result.ret == 1, out
    result.stdout.fnmatch_lines(["rollback: rolled_back_verified*"])
    names = {p.name for p in every_file(evidence)}
    assert {"pytestdebug.log", "pytest.log"} <= names
    # The secrets really were echoed to every writer, so "absent" proves the masking.
    assert "[redacted]" in out
    echoed_into = (
        "pytestdebug.log",
        "pytest.log",
        "junit.xml",
        "verification-v1.log",
        "junit.verification-v1.xml",
    )
    for name in echoed_into:
        # Under xdist every process writes pytest's --debug file (pytest opens it in each), so
        # their bytes may interleave mid-character: decoded leniently, as _assert_nowhere does.
        text = (evidence / name).read_bytes().decode("utf-8", errors="replace")
        assert "[redacted]" in text, name
    allure = "".join(p.read_text() for p in (evidence / "allure").iterdir())
    assert "lookup [redacted]" in allure and "upstream refused [redacted] with [redacted]" in allure
    assert '"model": "m1"' in allure  # configuration values are not secrets: shown as they are
    bundle = read_valid_bundle(evidence / "scriptum.json")
    assert bundle["preflight"]["fingerprints"] == {"algorithm": "hmac-sha256", "key": "session"}
    _assert_nowhere([TOKEN, ECHO_KEY, ECHO_PASSWORD], result, evidence)


# -- a key declared secret (DESIGN section 4: "secret by name ... or declared secret") --------

CONN_VALUE = "pg-conn-5e0a91d2"  # tenant CONN: nothing in its name says secret
_CONN_HANDLER = """
    def handler(event, context):
        return {{"ok": {ok}, "conn": (context.env or {{}}).get("CONN", "")}}
"""
_CONN_SUITE = """
import pytest

pytestmark = pytest.mark.scriptum("calc")

@pytest.mark.smoke_input({})
def test_conn(smoke_thread):
    if not smoke_thread.output["ok"]:
        assert smoke_thread.output == {}  # the failure text shows the whole output, CONN included
"""


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "not-declared"])
def test_a_key_declared_secret_is_masked_like_one_secret_by_name(
    pytester: pytest.Pytester, declared: bool
) -> None:
    write_seed(
        pytester.path / "seed",
        script="calc",
        versions={1: _CONN_HANDLER.format(ok=True), 2: _CONN_HANDLER.format(ok=False)},
        active=2,
        tenant_env={"CONN": CONN_VALUE, "API_SECRET": ENV_MARKER, "DB_HOST": "db"},
    )
    pytester.makepyfile(test_conn=_CONN_SUITE)
    extra = ["--scriptum-secret-env=CONN"] if declared else []
    result = pytester.runpytest(
        "--scriptum-endpoint=embedded",
        "--scriptum-seed=seed",
        "--scriptum-script=calc",
        *extra,
        *EVIDENCE_ARGS,
    )
    out = result.stdout.str()
    assert result.ret == 1, out  # v2 fails, rolled back to v1, verified
    if declared:
        assert "[redacted]" in out
        _assert_nowhere([CONN_VALUE], result, pytester.path / "evidence")
    else:  # the same session without the declaration shows it: the mask comes from the option
        assert CONN_VALUE in out
