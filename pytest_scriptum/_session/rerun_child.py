"""Loaded first in a verification re-run (``-p pytest_scriptum._session.rerun_child``): what must
happen before any other plugin configures.

``--clean-alluredir`` applies once (DESIGN section 4 "One place"): the parent cleaned the results
directory before its candidate run; the child writes into the same directory and must not delete
the candidate's results, even when the ini's ``addopts`` asks every run to clean it.
"""

from __future__ import annotations

import pytest

from pytest_scriptum import _compat


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _compat.keep_allure_results(config)
