"""The evidence suite's calc script: a good v1 and a regressed v2 that is active (its rollback
target is v1), and a tiny smoke suite (``SUITE``) run against it in pytester sessions.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from kit.seeds import write_seed

__all__ = ["HANDLERS", "SCRIPT", "SUITE", "TENANT_ENV", "write_calc_seed"]

SCRIPT = "calc"
TENANT_ENV = {"API_SECRET": "tenant-secret-value-1f5e", "DB_HOST": "db.evidence.invalid"}

# v2 is the regression: sums of 10 or more come out one short.
HANDLERS = {
    1: """
        def handler(event, context):
            with context.step("add"):
                total = event["a"] + event["b"]
            with context.step("enrich"):
                configured = bool((getattr(context, "env", None) or {}).get("API_SECRET"))
            return {"sum": total, "secret_configured": configured}
    """,
    2: """
        def handler(event, context):
            with context.step("add"):
                total = event["a"] + event["b"]
                if total >= 10:
                    total -= 1
            with context.step("enrich"):
                configured = bool((getattr(context, "env", None) or {}).get("API_SECRET"))
            return {"sum": total, "secret_configured": configured}
    """,
}

SUITE = '''
import pytest

pytestmark = pytest.mark.scriptum("calc")


@pytest.mark.smoke_input({"a": 2, "b": 3})
@pytest.mark.smoke_expect({"sum": 5})
def test_small_sum(smoke_thread):
    assert smoke_thread.steps[0].name == "add"


@pytest.mark.scriptum("calc", critical=True)
@pytest.mark.smoke_input({"a": 20, "b": 30})
@pytest.mark.smoke_expect({"sum": 50, "secret_configured": True})
def test_big_sum(smoke_thread):
    pass


def test_runner_only(scriptum_runner):
    assert scriptum_runner.run({"a": 1, "b": 1}).output["sum"] == 2
'''


def write_calc_seed(root: Path, tenant_env: Mapping[str, str] = TENANT_ENV) -> Path:
    """A seed with calc v1 (good) and v2 (regressed, active): its rollback target is v1."""
    return write_seed(
        root, script=SCRIPT, versions=HANDLERS, active=2, overlay={"MODE": "strict"}, tenant_env=tenant_env
    )
