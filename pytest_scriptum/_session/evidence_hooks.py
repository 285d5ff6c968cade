"""Per-test evidence, in every process that runs tests: JUnit properties for smoke tests that never
got a thread, and each smoke test's Allure evidence. The writers are ``evidence.junit`` and
``evidence.allure``; this module only knows when to call them.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator

import pytest

from pytest_scriptum import _compat
from pytest_scriptum._session.resources import SessionResources
from pytest_scriptum._session.smoke import (
    advisory_of,
    is_smoke,
    mismatches_of,
    repeats_of,
    result_of,
    script_of,
    spec_of,
)
from pytest_scriptum.evidence import allure, junit

__all__ = ["TestEvidence"]

_RECORDED = pytest.StashKey[bool]()


class TestEvidence:
    """Per smoke test: JUnit properties for tests without a thread, and Allure evidence."""

    __test__ = False  # not a pytest test class

    def __init__(self, resources: SessionResources) -> None:
        self.resources = resources
        self.cfg = resources.cfg

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        # Before the teardown report copies item.user_properties (JUnit reads that report).
        if is_smoke(item):
            present = [name for name, _ in item.user_properties]
            script = script_of(item, self.cfg.script)
            missing = junit.missing_test_properties(present, script=script, version=self.resources.candidate)
            item.user_properties.extend(missing)
            if advisory_of(item) and "scriptum.advisory" not in present:
                item.user_properties.append(("scriptum.advisory", "true"))  # not gate evidence

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        # The call report, or the setup report of a test that never reaches its call.
        final = call.when == "call" or (call.when == "setup" and report.failed)
        if final and not item.stash.get(_RECORDED, False) and is_smoke(item):
            item.stash[_RECORDED] = True
            if _compat.allure_active(item.config):
                self._record_allure(item)
        return report

    def _record_allure(self, item: pytest.Item) -> None:
        spec, result = spec_of(item), result_of(item)
        redactor = self.resources.redactor
        try:
            script = result.script if result else script_of(item, self.cfg.script)
            version = (result.version or None) if result else self.resources.candidate
            allure.record_smoke_test(
                name=item.name,
                script=script,
                version=version,
                verification_of=self.cfg.verification_of,
                incident=self.cfg.incident,
                expectation=spec.expect if spec else None,
                smoke_input=spec.input if spec else None,
                result=result,
                mismatches=mismatches_of(item),
                redactor=redactor,
            )
            # Allure 3's default tree: the candidate run and the verification re-run under their
            # own versioned nodes, not interleaved under one file node.
            label = allure.run_label(script, version, self.cfg.verification_of)
            _compat.prefix_allure_title_path(item.config, label)
            if result is not None:
                start = _compat.allure_test_start_ms(item.config)
                steps = allure.thread_steps(result, redactor, test_start_ms=start)
                _compat.add_allure_steps(item.config, steps)
            repeats = repeats_of(item)
            if repeats is not None:  # one test, one step per attempt (DESIGN section 8 "Repeats")
                start = _compat.allure_test_start_ms(item.config)
                _compat.add_allure_steps(item.config, allure.attempt_steps(repeats, redactor, at_ms=start))
        except Exception as exc:  # evidence must never change a test's outcome
            warnings.warn(
                pytest.PytestWarning(f"scriptum: Allure evidence of {item.nodeid} not written: {exc!r}"),
                stacklevel=1,
            )
