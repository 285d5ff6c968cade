"""A wrong token or organization stops the session before any test: exit 20, a message that says
which check failed, and nothing changed on the platform."""

from __future__ import annotations

import pytest
from kit import OTHER_ORG, OTHER_TOKEN, Platform
from kit.seeds.doubles import smoke_suite

CASES = [
    # (label, token, extra options, what the output must say)
    ("wrong token", "tok-not-a-real-one-1234", [], "authentication failed"),
    ("wrong org", None, [f"--scriptum-org={OTHER_ORG}"], "authorization failed"),
    # x-organization-name (the header some docs pages name) is checked as strictly as the id.
    ("wrong org name", None, [f"--scriptum-org-name={OTHER_ORG}"], "authorization failed"),
    ("another org's token", OTHER_TOKEN, [f"--scriptum-org={OTHER_ORG}"], "script 'calc' not found"),
]


@pytest.mark.parametrize(("label", "token", "extra", "says"), CASES, ids=[c[0] for c in CASES])
def test_refused_credentials_change_nothing(
    pytester: pytest.Pytester,
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
    label: str,
    token: str | None,
    extra: list[str],
    says: str,
) -> None:
    if token is not None:
        monkeypatch.setenv("DODIL_TOKEN", token)
    pytester.makepyfile(test_smoke=smoke_suite(2))
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
