"""When the plugin loads its session layer (DESIGN section 6: a session that needs no platform pays
nothing for the plugin's smoke-run, gate, rollback and evidence machinery).

The plugin starts *idle*: only the options, the marker registry, the redactor and the hooks that
watch for a reason to wake are loaded. It wakes (``activation.activate``) at configure when the
session is configured for the platform, else at the first test that needs it:

- at configure, ``needed_at_configure``: a candidate version (``--scriptum-version`` or
  ``--scriptum-publish``: the session has a gate), a shard, a verification re-run, or an xdist
  worker handed a connection by its controller. An endpoint alone does not: without a candidate
  the session has no gate (DESIGN section 3 "Run modes"), and a ``SCRIPTUM_ENDPOINT`` exported for
  the whole CI job must not fail or slow a unit-test session that never uses it;
- during collection, ``declares_markers``: a test function carries one of the plugin's markers
  (validated and, for ``smoke_cases``, parametrized at ``pytest_generate_tests``);
- after collection, ``wakes_for``: a selected test carries one of the markers (a conftest may add
  them in ``pytest_collection_modifyitems``) or requests a platform fixture (``SMOKE_FIXTURES``);
- an xdist controller, at the first report that carries a worker's smoke record
  (``xdist.REPORT_ATTR``);
- any plugin fixture, when requested (``request.getfixturevalue`` included).

An idle session without any of these is exactly a session without the plugin: its exit code,
output and files are pytest's own.
"""

from __future__ import annotations

from typing import Any, Final

import pytest

from pytest_scriptum._options import ScriptumConfig
from pytest_scriptum._session.xdist import WORKERINPUT_KEY
from pytest_scriptum.markers import MARKER_NAMES

__all__ = ["SMOKE_FIXTURES", "declares_markers", "needed_at_configure", "wakes_for"]

SMOKE_FIXTURES: Final = ("smoke_thread", "scriptum_runner", "scriptum_client", "scriptum_http")
"""Fixtures through which a test uses the platform (DESIGN section 3 "What counts")."""


def needed_at_configure(config: pytest.Config, cfg: ScriptumConfig) -> bool:
    """Whether the session layer loads at configure: the session is configured for the platform."""
    if cfg.has_candidate or cfg.shard is not None or cfg.is_verification_run:
        return True
    workerinput: Any = getattr(config, "workerinput", None)
    return isinstance(workerinput, dict) and bool(workerinput.get(WORKERINPUT_KEY))


def declares_markers(node: pytest.Item | Any) -> bool:
    """Whether a test (an item or a ``FunctionDefinition``) carries one of the plugin's markers,
    its own or inherited from its class or module."""
    return any(mark.name in MARKER_NAMES for mark in node.iter_markers())


def wakes_for(item: pytest.Item) -> bool:
    """Whether a selected test needs the session layer: one of the plugin's markers, or a request
    for a platform fixture."""
    names = getattr(item, "fixturenames", ())
    return any(name in names for name in SMOKE_FIXTURES) or declares_markers(item)
