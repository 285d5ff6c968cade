"""Every matcher and fixture through the installed plugin: one inner smoke suite, per-test outcomes.

The inner suite runs against an embedded server seeded with the ``shop`` script (v2 active, v3 the
candidate). Each matcher has a passing and a failing test; each failing test has exactly one
mismatch, so the test asserts the whole failure message: header with script, version and thread
id, then the one diff line at the failing path. The same suite runs over gRPC, over HTTP and
under ``-n 2``; all three must give the same per-test outcomes and exit code.
"""

from __future__ import annotations

import json
import re

import pytest
from kit import outcomes, write_smoke_ini
from kit.seeds.shop import SHOP, SHOP_SECRETS, write_shop_seed

MATCHERS = """
import pytest

FULL = {"kind": "full"}
SMALL = {"kind": "small"}


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect({"customer": {"address": {"city": "Paris"}}})
def test_subset_nested_pass():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect({"customer": {"address": {"city": "Berlin"}}})
def test_subset_nested_fail():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect({"lines": [{"sku": "A-1"}, {"qty": 2}]})
def test_subset_list_pass():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect({"lines": [{"sku": "A-1"}, {"qty": 3}]})
def test_subset_list_fail():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect({"lines": [{"sku": "A-1"}]})
def test_subset_list_length_fail():
    pass


@pytest.mark.smoke_input(SMALL)
@pytest.mark.smoke_expect({"version": 3, "n": 1}, match="exact")
def test_exact_pass():
    pass


@pytest.mark.smoke_input(SMALL)
@pytest.mark.smoke_expect({"version": 3}, match="exact")
def test_exact_fail():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect(schema={"type": "object", "required": ["id", "total"]})
def test_schema_dict_pass():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect(schema={"type": "object", "required": ["phone"]})
def test_schema_dict_fail():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect(schema="@schemas/loose.json")
def test_schema_file_pass():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect(schema="@schemas/strict.json")
def test_schema_file_fail():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect(schema="declared")
def test_schema_declared_pass():
    pass


@pytest.mark.smoke_input({"kind": "bad-shape"})
@pytest.mark.smoke_expect(schema="declared")
def test_schema_declared_fail():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect({"total": 10.0, "ratio": 0.333}, approx=0.01)
def test_approx_number_pass():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect({"total": 10.0}, approx=0.001)
def test_approx_number_fail():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect({"total": 10.0, "ratio": 0.3333}, approx={"/total": 0.01})
def test_approx_path_pass():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect({"total": 10.0, "ratio": 0.33}, approx={"total": 0.01})
def test_approx_path_fail():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect(regex={"/id": "INV-[0-9]{4}", "/lines/1/sku": "[A-Z]-[0-9]"})
def test_regex_pass():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect(regex={"id": "INV-[0-9]{3}"})
def test_regex_no_match_fail():
    pass


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect(regex={"/customer/phone": ".+"})
def test_regex_missing_path_fail():
    pass


@pytest.mark.smoke_input({"kind": "boom"})
@pytest.mark.smoke_expect(status="FAILED")
def test_status_failed_expected_pass(smoke_thread):
    assert "boom: the input asked this handler to fail" in smoke_thread.error
    assert smoke_thread.error_code == "SCRIPT_ERROR"
    assert [(s.path, s.name, s.status) for s in smoke_thread.steps] == [("1", "load", "FAILED")]


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect(status="FAILED")
def test_status_failed_expected_got_completed():
    pass


@pytest.mark.smoke_input({"kind": "boom"})
def test_default_expects_completed():
    pass


@pytest.mark.smoke_input("@inputs/small.json")
@pytest.mark.smoke_expect({"version": 3, "n": 1}, match="exact")
def test_input_file_pass():
    pass


@pytest.mark.smoke_input(SMALL)
@pytest.mark.smoke_expect({"n": 2})
def test_empty_body_fail():
    "A docstring and nothing else: the plugin still runs the thread and checks smoke_expect."


@pytest.mark.smoke_cases("cases/*.json")
def test_case(smoke_thread):
    assert smoke_thread.version == 3
"""

FIXTURES = """
import hashlib

import httpx
import pytest

SECRETS = %(secrets)r


def sha256(value):
    return hashlib.sha256(value.encode()).hexdigest()


def test_client_reads_the_overlay_and_never_shows_values(scriptum_client):
    # Env reads return values, as the platform's do; the records keep them out of their repr.
    env = scriptum_client.get_script_env("shop")
    assert {key: sha256(value) for key, value in env.env.items()} == {
        "MODEL": sha256("model-secret-x"), "REGION": sha256("eu-secret-1")}
    assert {"API_KEY", "DB_HOST"} <= {var.key for var in scriptum_client.list_env_vars()}
    for secret in SECRETS:
        assert secret not in repr(env)


def test_http_gets_the_env_route_with_auth(scriptum_http):
    response = scriptum_http.get("/v1/scriptum/scripts/shop/env")
    assert response.status_code == 200, response.text
    assert sorted(response.json()["env"]) == ["MODEL", "REGION"]
    # the same route without the fixture's headers is refused: the fixture is what authenticates
    bare = httpx.get(str(scriptum_http.base_url.join("/v1/scriptum/scripts/shop/env")))
    assert bare.status_code == 401


def test_version_is_the_candidate_int(scriptum_version):
    assert type(scriptum_version) is int and scriptum_version == 3


def test_runner_is_pinned_while_another_version_is_active(scriptum_runner, scriptum_client):
    assert scriptum_client.get_script("shop").active_version == 2
    result = scriptum_runner.run({"kind": "small"})
    assert (result.script, result.version, result.status) == ("shop", 3, "COMPLETED")
    assert result.output == {"version": 3, "n": 1}  # v3's code ran, not the active v2's


@pytest.mark.smoke_input({"kind": "full"})
def test_smoke_thread_fields(smoke_thread):
    t = smoke_thread
    assert isinstance(t.thread_id, str) and len(t.thread_id) >= 8
    assert (t.script, t.version, t.status, t.error, t.error_code) == ("shop", 3, "COMPLETED", "", "")
    assert t.output["version"] == 3 and t.output["id"] == "INV-0042"
    steps = [(s.path, s.name, s.status) for s in t.steps]
    assert steps == [("1", "load", "COMPLETED"), ("2", "build", "COMPLETED")]
    assert all(s.started_at_ms <= s.finished_at_ms for s in t.steps)
    assert t.steps[0].finished_at_ms <= t.steps[1].started_at_ms
    assert set(t.env_keys) == {"API_KEY", "DB_HOST", "MODEL", "REGION"}
    assert t.output["seen_env"] == sorted(t.env_keys) and t.output["db_host_in_environ"] is True
    assert isinstance(t.duration_s, float) and t.duration_s >= 0
    import time
    assert isinstance(t.finished_at, float) and abs(time.time() - t.finished_at) < 300


@pytest.mark.scriptum(env=False)
@pytest.mark.smoke_input({"kind": "full"})
def test_env_false_runs_without_env(smoke_thread):
    assert smoke_thread.env_keys == ()
    assert smoke_thread.output["seen_env"] == []
    assert smoke_thread.output["db_host_in_environ"] is False
"""

CASES = {
    "small-ok": {"id": "small-ok", "input": {"kind": "small"}, "expect": {"output": {"n": 1}}},
    "boom-fails": {"id": "boom-fails", "input": {"kind": "boom"}, "expect": {"status": "FAILED"}},
    "city-zip": {
        "id": "city-zip",
        "input": "@../inputs/full.json",
        "expect": {"output": {"customer": {"address": {"zip": "10115"}}}},
    },
}

M = "test_shop_matchers.py::"
F = "test_shop_fixtures.py::"
EXPECTED = {
    M + "test_subset_nested_pass": "passed",
    M + "test_subset_nested_fail": "failed",
    M + "test_subset_list_pass": "passed",
    M + "test_subset_list_fail": "failed",
    M + "test_subset_list_length_fail": "failed",
    M + "test_exact_pass": "passed",
    M + "test_exact_fail": "failed",
    M + "test_schema_dict_pass": "passed",
    M + "test_schema_dict_fail": "failed",
    M + "test_schema_file_pass": "passed",
    M + "test_schema_file_fail": "failed",
    M + "test_schema_declared_pass": "passed",
    M + "test_schema_declared_fail": "failed",
    M + "test_approx_number_pass": "passed",
    M + "test_approx_number_fail": "failed",
    M + "test_approx_path_pass": "passed",
    M + "test_approx_path_fail": "failed",
    M + "test_regex_pass": "passed",
    M + "test_regex_no_match_fail": "failed",
    M + "test_regex_missing_path_fail": "failed",
    M + "test_status_failed_expected_pass": "passed",
    M + "test_status_failed_expected_got_completed": "failed",
    M + "test_default_expects_completed": "failed",
    M + "test_input_file_pass": "passed",
    M + "test_empty_body_fail": "failed",
    M + "test_case[boom-fails]": "passed",
    M + "test_case[city-zip]": "failed",
    M + "test_case[small-ok]": "passed",
    F + "test_client_reads_the_overlay_and_never_shows_values": "passed",
    F + "test_http_gets_the_env_route_with_auth": "passed",
    F + "test_version_is_the_candidate_int": "passed",
    F + "test_runner_is_pinned_while_another_version_is_active": "passed",
    F + "test_smoke_thread_fields": "passed",
    F + "test_env_false_runs_without_env": "passed",
}

# The one diff line of each failing test (after the header naming script, version and thread).
DIFFS = {
    "test_subset_nested_fail": "/customer/address/city: expected 'Berlin', got 'Paris'",
    "test_subset_list_fail": "/lines/1/qty: expected 3, got 2",
    "test_subset_list_length_fail": "/lines: expected a list of 1 item, got 2",
    "test_exact_fail": "/n: unexpected key, got 1",
    "test_schema_dict_fail": "(whole output): schema: 'phone' is a required property",
    "test_schema_file_fail": "/id: schema: 'INV-0042' does not match '^X-'",
    "test_schema_declared_fail": "/total: schema: 'ten' is not of type 'number'",
    "test_approx_number_fail": "/total: expected 10.0 ± 0.001, got 10.004",
    "test_approx_path_fail": "/ratio: expected 0.33, got 0.3333",
    "test_regex_no_match_fail": "/id: expected a string matching 'INV-[0-9]{3}', got 'INV-0042'",
    "test_regex_missing_path_fail": "/customer/phone: missing, expected a string matching '.+'",
    "test_status_failed_expected_got_completed": "status: expected FAILED, got COMPLETED",
    "test_default_expects_completed": "status: expected COMPLETED, got FAILED: *boom: the input asked*",
    "test_empty_body_fail": "/n: expected 2, got 1",
    "test_case[city-zip]": "/customer/address/zip: expected '10115', got '75001'",
}


@pytest.fixture
def shop_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    write_shop_seed(pytester.path / "seed")
    write_smoke_ini(pytester, script=SHOP, scriptum_version="3")
    pytester.makepyfile(test_shop_matchers=MATCHERS, test_shop_fixtures=FIXTURES % {"secrets": SHOP_SECRETS})
    for name, schema in {
        "loose": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
        "strict": {"type": "object", "properties": {"id": {"type": "string", "pattern": "^X-"}}},
    }.items():
        (pytester.mkdir("schemas") if name == "loose" else pytester.path / "schemas").joinpath(
            f"{name}.json"
        ).write_text(json.dumps(schema))
    inputs = pytester.mkdir("inputs")
    (inputs / "small.json").write_text(json.dumps({"kind": "small"}))
    (inputs / "full.json").write_text(json.dumps({"kind": "full"}))
    cases = pytester.mkdir("cases")
    for case_id, case in CASES.items():
        (cases / f"{case_id}.json").write_text(json.dumps(case))
    return pytester


def assert_expected_outcomes(result: pytest.RunResult) -> None:
    assert outcomes(result) == EXPECTED, result.stdout.str()
    failed = sum(1 for outcome in EXPECTED.values() if outcome == "failed")
    result.assert_outcomes(passed=len(EXPECTED) - failed, failed=failed)
    assert result.ret == 1  # the gate failed; v3 is not active, so there is nothing to roll back
    result.stdout.fnmatch_lines(["verdict: FAIL - *", "rollback: candidate_not_active*"])


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_every_matcher_and_fixture_through_the_plugin(shop_suite: pytest.Pytester, transport: str) -> None:
    result = shop_suite.runpytest(
        "-p", "no:cacheprovider", "-rA", "--strict-markers", f"--scriptum-transport={transport}"
    )
    assert_expected_outcomes(result)
    for test, diff in DIFFS.items():
        result.stdout.re_match_lines(
            [
                rf"_+ {re.escape(test)} _+$",
                r"smoke expectation failed: shop v3, thread thr_[0-9a-f]{8,}$",
                "  " + re.escape(diff).replace(r"\*", ".*") + "$",
            ],
            consecutive=True,
        )
    for secret in SHOP_SECRETS:
        assert secret not in result.stdout.str()


def test_xdist_gives_the_same_outcomes_and_exit_code(shop_suite: pytest.Pytester) -> None:
    result = shop_suite.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "--strict-markers", "-n", "2")
    assert_expected_outcomes(result)
    result.stdout.fnmatch_lines(
        ["*smoke expectation failed: shop v3, thread *", "*/lines/1/qty: expected 3, got 2"]
    )
