"""The session layer, loaded when the session first needs it (``idle`` says when; DESIGN section 6).

Importing this module loads the smoke-run side (specs, dispatch, expectations, report records), the
gate's owner (preflight, gate, rollback, outcome, evidence) and the per-test evidence hooks; a
session that never needs them never imports it.
"""

from __future__ import annotations

import pytest

from pytest_scriptum import _compat
from pytest_scriptum._session.evidence_hooks import TestEvidence
from pytest_scriptum._session.gate_owner import GateOwner
from pytest_scriptum._session.progress import ProgressFile
from pytest_scriptum._session.resources import SessionResources
from pytest_scriptum._session.shard import ShardSplit
from pytest_scriptum._session.smoke import SmokeTests
from pytest_scriptum._session.xdist import Local, Role, XdistController, XdistWorker

__all__ = ["activate"]


def activate(config: pytest.Config, resources: SessionResources) -> Role:
    """This process's role (one per process, as pytest-cov's engine: ``xdist``), with the plugins
    that serve it registered: the shard split (``--scriptum-shard``), the per-test evidence and, in
    a verification re-run's owning process, its progress file. Called once per config."""
    cfg = resources.cfg
    role: Role
    if hasattr(config, "workerinput"):
        role = XdistWorker(config, resources, SmokeTests(config, resources, on_worker=True))
    else:
        kind = XdistController if _compat.xdist_distributing(config) else Local
        smoke = SmokeTests(config, resources, on_worker=False)
        role = kind(config, resources, smoke, GateOwner(config, resources))
    ShardSplit.install(config, cfg.shard)
    role.shard = ShardSplit.of(config)
    config.pluginmanager.register(TestEvidence(resources), "scriptum-test-evidence")
    if cfg.is_verification_run and cfg.evidence is not None and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ProgressFile(cfg.evidence), "scriptum-verification-progress")
    return role
