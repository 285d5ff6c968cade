"""pytest-scriptum: pinned smoke tests, a promotion gate and verified rollback for Scriptum.

The plugin itself is loaded by pytest through the ``pytest11`` entry point
(``pytest_scriptum.plugin``); this package exports the types a smoke suite or a hook
implementation works with. They are imported lazily, so the embedded server (which shares only
the generated protobuf code with the plugin) does not load the plugin when it starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_scriptum.gate import GateConfig, GateCounts, Verdict
    from pytest_scriptum.rollback import RollbackPlan, RollbackResult, Verification
    from pytest_scriptum.runner import (
        PinnedRunner,
        PlatformFailure,
        PlatformFault,
        Step,
        ThreadResult,
        UnrequestedCancelError,
        VersionDriftError,
    )
    from pytest_scriptum.spec import JSON_NULL

_EXPORTS = {
    "GateConfig": "gate",
    "GateCounts": "gate",
    "Verdict": "gate",
    "JSON_NULL": "spec",
    "RollbackPlan": "rollback",
    "RollbackResult": "rollback",
    "Verification": "rollback",
    "PinnedRunner": "runner",
    "PlatformFailure": "runner",
    "PlatformFault": "runner",
    "Step": "runner",
    "ThreadResult": "runner",
    "UnrequestedCancelError": "runner",
    "VersionDriftError": "runner",
}

__all__ = [
    "JSON_NULL",
    "GateConfig",
    "GateCounts",
    "PinnedRunner",
    "PlatformFailure",
    "PlatformFault",
    "RollbackPlan",
    "RollbackResult",
    "Step",
    "ThreadResult",
    "UnrequestedCancelError",
    "Verdict",
    "Verification",
    "VersionDriftError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_scriptum' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pytest_scriptum.{module}"), name)
