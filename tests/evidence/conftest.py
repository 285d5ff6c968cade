"""Fixtures of the evidence tests: the calc smoke suite (``kit.seeds.sums``) set up for the embedded
server, and a two-organization server (``kit.fixtures.alpha_beta``) for the token-leak tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kit.fixtures.alpha_beta import _token_env, server  # noqa: F401  (test_token_not_leaked's platform)
from kit.seeds.sums import SUITE, write_calc_seed


@pytest.fixture(scope="session")
def seed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_calc_seed(tmp_path_factory.mktemp("evidence-seed") / "seed")


@pytest.fixture
def suite(pytester: pytest.Pytester, seed_dir: Path) -> pytest.Pytester:
    """A pytester dir holding the calc smoke suite and its seed, set up for the embedded server."""
    shutil.copytree(seed_dir, pytester.path / "seed")
    pytester.makeini(
        "[pytest]\nscriptum_endpoint = embedded\nscriptum_seed = seed\nscriptum_script = calc\n"
        "scriptum_evidence = evidence/scriptum.json\n"
    )
    pytester.makepyfile(test_calc=SUITE)
    return pytester


