"""Preflight's logic (DESIGN section 3 "Preflight", section 5): what it concludes from the answers
of a platform, given through a fake client. The same checklist against the real dev server is in
tests/rollback/test_gate_rollback.py; the servers with renumbered fields are the lead's tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from kit.fake_platform import FakePlatform, bundled, history

from pytest_scriptum.client import ScriptumError
from pytest_scriptum.client._records import ApiInfo, Script, ScriptVersion
from pytest_scriptum.preflight import FINGERPRINT_KEY_ENV, Preflight, fingerprint, run_preflight

HINT = "the server's field numbers differ from the bundled descriptors; enable server reflection"
API = "0. platform speaks the API the plugin uses"


def preflight(platform: FakePlatform, **options: Any) -> Preflight:
    arguments: dict[str, Any] = {"script": "calc", "candidate": 4, "explicit_target": None, "require_env": ()}
    arguments.update(options)
    return run_preflight(platform.client, **arguments)


def test_a_healthy_platform_passes_every_item() -> None:
    result = preflight(FakePlatform(), require_env=("DB_HOST", "MODEL"))
    assert result.ok, result.items
    assert [item.name for item in result.items] == [
        "0. platform speaks the API the plugin uses",
        "3. candidate version exists",
        "5. rollback target verified",
        "2. script overlay recorded",
        "1. tenant env has the critical keys",
    ]
    assert (result.active_version, result.target, result.target_source) == (4, 3, "history")
    assert result.api is not None and result.api.descriptors == "reflection"
    assert "RollbackScriptRequest.expected_active_version" in result.api.extensions_used


# --- 0. the API ---------------------------------------------------------------------------------


def test_a_missing_method_or_field_fails_preflight_naming_it_before_any_other_call() -> None:
    problems = (
        "CreateThread: request field 'load_env' missing (CreateThreadRequest.load_env, bool)",
        "RollbackScript: method missing",
    )
    platform = FakePlatform(api=ApiInfo("reflection", frozenset(), problems))
    result = preflight(platform)
    assert not result.ok
    assert result.failure == (
        "0. platform speaks the API the plugin uses: the server lacks what the plugin uses: "
        "CreateThread: request field 'load_env' missing (CreateThreadRequest.load_env, bool); "
        "RollbackScript: method missing"
    )
    assert [name for name, _, _ in platform.calls] == ["api_info"]  # nothing else was asked
    assert result.api is not None and result.api.extensions_used == ()


def test_extensions_used_are_those_the_server_offers_and_the_plugin_uses() -> None:
    offered = frozenset({"Script.activation_history", "Script.not_ours", "RollbackScriptRequest.reason"})
    result = preflight(FakePlatform(api=ApiInfo("reflection", offered)))
    assert result.api is not None
    assert result.api.as_dict() == {
        "descriptors": "reflection",
        "extensions_used": ["RollbackScriptRequest.reason", "Script.activation_history"],
    }


# --- 0. wire mismatch probes (bundled descriptors) ----------------------------------------------


def test_bundled_get_script_answering_another_name_is_a_wire_mismatch() -> None:
    platform = bundled(FakePlatform())
    platform.answers["get_script"] = lambda name: Script("", 0, 0)  # the name field was not read
    result = preflight(platform)
    assert result.failure == f"{API}: wire mismatch: GetScript answered name '' for 'calc' — {HINT}"
    assert not platform.called("get_script_version")  # never a step further on a misread wire


def test_with_reflection_the_same_answer_is_not_probed() -> None:
    # Reflection gives the server's own field numbers: the echo probe is for bundled descriptors only.
    platform = FakePlatform()
    platform.answers["get_script"] = lambda name: Script("calc-renamed", 4, 5, history=platform.activations)
    assert preflight(platform).ok


def test_bundled_get_script_refusing_a_well_formed_name_is_a_wire_mismatch() -> None:
    platform = bundled(FakePlatform())
    platform.answers["get_script"] = ScriptumError("INVALID_ARGUMENT", "name is required", "GetScript")
    result = preflight(platform)
    assert result.failure is not None
    assert result.failure.startswith(f"{API}: wire mismatch: GetScript refused the well-formed name 'calc'")
    assert result.failure.endswith(HINT)


def test_bundled_not_found_for_a_listed_script_is_a_wire_mismatch() -> None:
    platform = bundled(FakePlatform())
    platform.answers["get_script"] = ScriptumError("NOT_FOUND", "script '' not found", "GetScript")
    result = preflight(platform)
    assert result.failure == (
        "0. platform speaks the API the plugin uses: wire mismatch: GetScript answered NOT_FOUND for 'calc', "
        f"but ListScripts lists it — {HINT}"
    )


def test_bundled_not_found_for_an_unlisted_script_is_just_not_found() -> None:
    platform = bundled(FakePlatform())
    result = preflight(platform, script="nope")
    assert result.failure == "3. candidate version exists: script 'nope' not found"


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (
            lambda name, version: ScriptVersion(name, 0, "ACTIVE"),
            "GetScriptVersion answered 'calc' v0 for 'calc' v4",
        ),
        (
            lambda name, version: ScriptVersion("", 4, "ACTIVE"),
            "GetScriptVersion answered '' v4 for 'calc' v4",
        ),
        (
            ScriptumError("NOT_FOUND", "calc v0 not found", "GetScriptVersion"),
            "GetScriptVersion answered NOT_FOUND for 'calc' v4, but ListScriptVersions lists it",
        ),
        (
            ScriptumError("INVALID_ARGUMENT", "version must be >= 1", "GetScriptVersion"),
            "GetScriptVersion refused 'calc' v4 (GetScriptVersion: INVALID_ARGUMENT: version must be >= 1)",
        ),
    ],
)
def test_bundled_get_script_version_must_echo_name_and_version(answer: Any, detail: str) -> None:
    platform = bundled(FakePlatform())
    platform.answers["get_script_version"] = answer
    result = preflight(platform)
    assert result.failure == f"{API}: wire mismatch: {detail} — {HINT}"
    assert not platform.called("list_env_vars")


# --- 3. the candidate -----------------------------------------------------------------------------


def test_unknown_candidate_names_the_latest_published_version() -> None:
    result = preflight(FakePlatform(), candidate=9)
    assert result.failure == "3. candidate version exists: calc v9 not found (latest published is v5)"


@pytest.mark.parametrize("status", ["DRAFT", "COMPILING", "FAILED", ""])
def test_unpublished_candidate_fails(status: str) -> None:
    platform = FakePlatform()
    platform.versions[5] = status
    result = preflight(platform, candidate=5)
    assert result.failure == (
        f"3. candidate version exists: calc v5 is not published (status {status or 'unknown'}; "
        "published versions are ACTIVE, COMPILED, SUPERSEDED)"
    )


# --- 5. the rollback target -----------------------------------------------------------------------


def test_without_history_and_without_explicit_target_preflight_says_to_pass_one() -> None:
    result = preflight(FakePlatform(activations=None))
    assert result.failure == (
        "5. rollback target verified: the platform offers no activation history to find the version "
        "active before v4: pass --scriptum-rollback-to=N (a known-good version)"
    )


def test_without_history_an_explicit_target_is_used() -> None:
    result = preflight(FakePlatform(activations=None), explicit_target=3)
    assert result.ok, result.failure
    assert (result.target, result.target_source) == (3, "explicit")


def test_the_verification_run_needs_no_target() -> None:
    assert preflight(FakePlatform(activations=None), candidate=3, check_target=False).ok


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        (4, "--scriptum-rollback-to=4 is the candidate itself"),
        (7, "--scriptum-rollback-to=7: calc v7 not found"),
        (2, "--scriptum-rollback-to=2: v2 was rolled back from before; pick a known-good version"),
    ],
)
def test_explicit_target_must_exist_differ_and_never_have_been_rolled_back_from(
    target: int, problem: str
) -> None:
    # v2 was rolled back from once (an earlier incident), then 3 and 4 were published.
    platform = FakePlatform(
        activations=history(
            (1, 0, "PUBLISH"), (2, 1, "PUBLISH"), (1, 2, "ROLLBACK"), (3, 1, "PUBLISH"), (4, 3, "PUBLISH")
        )
    )
    result = preflight(platform, explicit_target=target)
    assert result.failure == f"5. rollback target verified: {problem}"


def test_rolled_back_from_flag_of_the_version_counts_without_history() -> None:
    platform = FakePlatform(activations=None)
    platform.answers["get_script_version"] = lambda name, version: ScriptVersion(
        name, version, "SUPERSEDED", rolled_back_from=version == 3
    )
    result = preflight(platform, explicit_target=3)
    assert result.failure == (
        "5. rollback target verified: --scriptum-rollback-to=3: v3 was rolled back from before; "
        "pick a known-good version"
    )


# --- 1., 2. env ---------------------------------------------------------------------------------


def test_effective_env_is_tenant_plus_overlay_keys_with_a_value() -> None:
    platform = FakePlatform(
        tenant_env={"DB_HOST": "db.secret.invalid"},
        overlay={"MODEL": "gpt-secret-4.1", "REGION": "", "DB_HOST": ""},  # "" defers to the tenant
    )
    result = preflight(platform, require_env=("DB_HOST", "MODEL", "REGION"))
    assert result.effective_keys == ("DB_HOST", "MODEL")
    assert result.failure == (
        "1. tenant env has the critical keys: missing from the effective env of calc: REGION"
    )


def test_contract_env_keys_without_default_join_the_required_keys() -> None:
    contract = {
        "env": [
            {"name": "OPENAI_API_KEY", "required": True, "env_from": "OPENAI_KEY_V2"},
            {"name": "DB_HOST", "required": True},
            {"name": "MODEL", "default_value_json": '"gpt-4.1"'},  # a default: not required
        ]
    }
    platform = FakePlatform(contracts={4: contract})
    result = preflight(platform, require_env=("DB_HOST",))
    assert result.failure == (
        "1. tenant env has the critical keys: missing from the effective env of calc: OPENAI_KEY_V2 "
        "(OPENAI_KEY_V2 required by the env block of calc v4's contract)"
    )
    platform.tenant_env["OPENAI_KEY_V2"] = "sk-secret-value"
    result = preflight(platform, require_env=("DB_HOST",))
    assert result.ok
    assert result.items[-1].detail == "present: DB_HOST, OPENAI_KEY_V2"


def test_values_never_reach_the_result_only_keys_and_fingerprints() -> None:
    platform = FakePlatform(
        tenant_env={"API_KEY": "sk-tenant-secret-1"}, overlay={"MODEL": "overlay-secret-2", "EMPTY": ""}
    )
    seen: list[dict[str, str]] = []
    key = "k" * 32
    environ = {FINGERPRINT_KEY_ENV: key}
    result = preflight(
        platform, require_env=("API_KEY",), environ=environ, on_env=lambda env: seen.append(dict(env))
    )
    assert result.ok
    assert result.overlay == {
        "MODEL": hmac.new(key.encode(), b"overlay-secret-2", hashlib.sha256).hexdigest(),
        "EMPTY": hmac.new(key.encode(), b"", hashlib.sha256).hexdigest(),
    }
    assert fingerprint("overlay-secret-2", key.encode()) == result.overlay["MODEL"]
    assert result.as_dict()["fingerprints"] == {"algorithm": "hmac-sha256", "key": FINGERPRINT_KEY_ENV}
    text = repr(result) + json.dumps(result.as_dict())
    for value in ("sk-tenant-secret-1", "overlay-secret-2", key):
        assert value not in text
    # The session's redactor is shown both env mappings it read (it keeps the secret ones).
    assert seen == [{"API_KEY": "sk-tenant-secret-1"}, {"MODEL": "overlay-secret-2", "EMPTY": ""}]


def test_a_low_entropy_value_cannot_be_found_by_hashing_candidates() -> None:
    """DESIGN section 4: fingerprints are keyed; without SCRIPTUM_FINGERPRINT_KEY every session
    draws its own key, so hashing likely values (m1, m2, ...) finds nothing and two sessions'
    fingerprints of one value differ."""
    platform = FakePlatform(overlay={"MODEL": "m1"})
    first = preflight(platform, environ={}).overlay["MODEL"]
    second = preflight(platform, environ={}).overlay["MODEL"]
    assert first != second
    candidates = [f"{prefix}{n}" for prefix in ("m", "M", "model-", "gpt-") for n in range(100)]
    digests = {
        algorithm(candidate.encode()).hexdigest()
        for candidate in candidates
        for algorithm in (hashlib.sha256, hashlib.sha1, hashlib.md5, hashlib.sha512, hashlib.blake2b)
    }
    digests |= {hmac.new(b"", c.encode(), hashlib.sha256).hexdigest() for c in candidates}
    assert "m1" in candidates and hashlib.sha256(b"m1").hexdigest() in digests
    assert first not in digests and second not in digests
    assert preflight(platform, environ={}).as_dict()["fingerprints"]["key"] == "session"


def test_a_shared_fingerprint_key_gives_comparable_fingerprints_and_must_be_long() -> None:
    platform = FakePlatform(overlay={"MODEL": "m1"})
    environ = {FINGERPRINT_KEY_ENV: "team-wide-fingerprint-key-2026"}
    assert preflight(platform, environ=environ).overlay == preflight(platform, environ=environ).overlay
    short = preflight(platform, environ={FINGERPRINT_KEY_ENV: "short"})
    assert not short.ok
    assert short.failure == (
        "2. script overlay recorded: SCRIPTUM_FINGERPRINT_KEY is shorter than 16 characters"
    )
    assert short.overlay == {}


# --- the platform itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (ScriptumError("UNAUTHENTICATED", "unknown token", "GetScript"), "authentication failed: GetScript:"),
        (ScriptumError("UNAVAILABLE", "refused", "GetScript"), "platform error: GetScript: UNAVAILABLE"),
    ],
)
def test_an_unreachable_or_refusing_platform_fails_preflight(error: ScriptumError, detail: str) -> None:
    platform = FakePlatform()
    platform.answers["get_script"] = error
    result = preflight(platform)
    assert result.failure is not None
    name, _, found = result.failure.partition(": ")
    assert name == "platform reachable and credentials accepted"
    assert found.startswith(detail)
