"""``--scriptum-no-env``: the handler sees no env at all; and ``schema="declared"`` on a version
that declares no output contract is the test's error (it says so), never a pass or a failure.

One inner session pinned to the shop script's v2 (active, no contract), rollback off and an error
budget of one, so the erroring declared-schema test neither triggers a rollback that is not under
test here nor hides the verdict. The
opposite (env on: the handler sees the tenant env and the overlay) is asserted by
test_matchers.py's ``test_smoke_thread_fields``.
"""

from __future__ import annotations

import pytest
from kit import outcomes, write_smoke_ini
from kit.seeds.shop import SHOP, write_shop_seed

SUITE = """
import pytest

FULL = {"kind": "full"}


@pytest.mark.smoke_input(FULL)
def test_marker_run_sees_no_env(smoke_thread):
    assert smoke_thread.version == 2
    assert smoke_thread.env_keys == ()
    assert smoke_thread.output["seen_env"] == []
    assert smoke_thread.output["db_host_in_environ"] is False


@pytest.mark.scriptum(env=True)
@pytest.mark.smoke_input(FULL)
def test_session_flag_beats_marker_env_true(smoke_thread):
    assert smoke_thread.env_keys == ()
    assert smoke_thread.output["seen_env"] == []


def test_runner_run_sees_no_env(scriptum_runner):
    result = scriptum_runner.run(FULL)
    assert (result.version, result.env_keys, result.output["seen_env"]) == (2, (), [])


@pytest.mark.smoke_input(FULL)
@pytest.mark.smoke_expect(schema="declared")
def test_declared_schema_of_a_version_without_one():
    pass
"""


def test_no_env_hides_env_and_declared_without_schema_fails(pytester: pytest.Pytester) -> None:
    write_shop_seed(pytester.path / "seed")
    write_smoke_ini(pytester, script=SHOP)
    pytester.makepyfile(test_shop_no_env=SUITE)
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "-rA",
        "--scriptum-version=2",
        "--scriptum-no-env",
        "--scriptum-rollback=off",
        "--scriptum-max-errors=1",
    )
    prefix = "test_shop_no_env.py::"
    assert outcomes(result) == {
        prefix + "test_marker_run_sees_no_env": "passed",
        prefix + "test_session_flag_beats_marker_env_true": "passed",
        prefix + "test_runner_run_sees_no_env": "passed",
        prefix + "test_declared_schema_of_a_version_without_one": "error",
    }, result.stdout.str()
    result.stdout.re_match_lines(
        [
            r"_+ ERROR at setup of test_declared_schema_of_a_version_without_one _+$",
            r"schema='declared': shop v2 declares no output contract \(its ScriptContract.outputs is "
            r"empty\); declare an output block or give the schema in the test$",
        ],
        consecutive=True,
    )
    result.assert_outcomes(passed=3, errors=1, warnings=1)
    # DESIGN: the runbook says keep env resolution on, so the flag warns
    result.stdout.fnmatch_lines(["*PytestWarning: --scriptum-no-env: *"])
    result.stdout.fnmatch_lines(["verdict: PASS - passed 3 of 3*"])
    assert result.ret == 0
