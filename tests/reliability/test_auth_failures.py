"""A wrong token or organization stops the session before any test: exit 20, a message that says
which check failed, and nothing changed on the platform."""

from __future__ import annotations

import pytest
from helpers import Platform
from reliability_kit import OTHER_ORG, OTHER_TOKEN, smoke_suite

CASES = [
    # (label, token, org, what the output must say)
    ("wrong token", "tok-not-a-real-one-1234", None, "authentication failed"),
    ("wrong org", None, OTHER_ORG, "authorization failed"),
    ("another org's token", OTHER_TOKEN, OTHER_ORG, "script 'calc' not found"),
]


@pytest.mark.parametrize(("label", "token", "org", "says"), CASES, ids=[c[0] for c in CASES])
def test_refused_credentials_change_nothing(
    pytester: pytest.Pytester,
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
    label: str,
    token: str | None,
    org: str | None,
    says: str,
) -> None:
    if token is not None:
        monkeypatch.setenv("DODIL_TOKEN", token)
    pytester.makepyfile(test_smoke=smoke_suite(2))
    extra = [f"--scriptum-org={org}"] if org else []
    before = platform.script()
    result = pytester.runpytest(*platform.args(*extra, version=2))  # v2 is active and would be rolled back
    assert result.ret == 20, result.stdout.str()
    result.assert_outcomes()
    out = result.stdout.str()
    assert "verdict: INCONCLUSIVE" in out
    assert "preflight: FAILED" in out and says in out
    if token is not None:
        assert token not in out + result.stderr.str()
    stats = platform.stats()
    assert stats.runs_started == 0
    assert stats.rollbacks_applied == 0
    assert platform.script() == before
