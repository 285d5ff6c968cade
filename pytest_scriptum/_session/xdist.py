"""Which process does what, one class per role (as pytest-cov's engine), and every key of the
channel between an xdist controller and its workers.

- ``Local``: the single pytest process. It owns the gate and runs the tests: it starts every
  marker-declared run at once when the run phase begins.
- ``XdistController``: owns the gate and runs no test. It hands the connection to each worker
  (``workerinput``), takes the selection from the first worker that collected, folds the
  workers' reports in as they arrive, and counts a worker that went down unfinished as crashed.
- ``XdistWorker``: runs the tests the controller hands it, starting the runs of every test it
  already owns (its queue), and reports back; it owns no gate.

``plugin`` creates one role object per process at configure and its hooks call the role.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pytest

from pytest_scriptum import _compat
from pytest_scriptum._session.resources import Connection

if TYPE_CHECKING:
    from pytest_scriptum._session.gate_owner import GateOwner
    from pytest_scriptum._session.resources import SessionResources
    from pytest_scriptum._session.smoke import SmokeTests

__all__ = [
    "DESELECTED",
    "FINISHED",
    "REPORT_ATTR",
    "WORKERINPUT_KEY",
    "WORKEROUTPUT_KEY",
    "Local",
    "Role",
    "XdistController",
    "XdistWorker",
]

# -- the channel ---------------------------------------------------------------------------------
WORKERINPUT_KEY: Final = "scriptum"
"""controller -> worker, in ``workerinput``: ``Connection.to_dict()`` (over execnet, never argv)."""

WORKEROUTPUT_KEY: Final = "scriptum"
"""worker -> controller, in ``workeroutput``: ``{FINISHED: True}`` once the worker's session ended
normally; a worker that goes down without it crashed."""

FINISHED: Final = "finished"
DESELECTED: Final = "deselected"
"""worker -> controller, in the same dict: how many tests the worker's collection deselected."""

REPORT_ATTR: Final = "scriptum"
"""The attribute of every smoke test's report that carries its ``records.ReportRecord`` as a dict
(xdist serialises report attributes; in a single process it is read off the same report)."""


# -- the roles -----------------------------------------------------------------------------------
class Role:
    """What one pytest process does for the plugin; the base runs tests and owns no gate."""

    def __init__(
        self,
        config: pytest.Config,
        resources: SessionResources,
        smoke: SmokeTests,
        owner: GateOwner | None = None,
    ) -> None:
        self.config = config
        self.resources = resources
        self.smoke = smoke
        self.owner = owner
        self.deselected_count = 0

    def start(self) -> None:
        """Session start: the gate's owner connects and runs the preflight."""
        if self.owner is not None:
            self.owner.start()

    def collected(self, items: list[pytest.Item]) -> None:
        """The selected items of this process."""
        self.smoke.collected(items)

    def run_loop(self, session: pytest.Session) -> bool | None:
        """Before pytest's run loop: True skips it (a failed preflight runs no smoke test)."""
        if self.owner is not None and self.owner.preflight_failed:
            return True
        return None

    def before_test(self, item: pytest.Item) -> None:
        """Before each test's protocol in this process."""
        self.smoke.before(item)

    def deselected(self, count: int) -> None:
        """``pytest_deselected`` in this process."""
        self.deselected_count += count
        if self.owner is not None:
            self.owner.deselected_items(count)

    def collectreport(self, report: pytest.CollectReport) -> None:
        """Every collect report this process sees (its own, or its workers' failed ones)."""
        if report.failed and self.owner is not None:
            self.owner.collection_failed(report.nodeid)

    def logreport(self, report: pytest.TestReport, session: pytest.Session) -> None:
        """Every report this process sees (its own, or its workers')."""
        if self.owner is not None:
            self.owner.logreport(report, session)
        if session.shouldfail or session.shouldstop:
            self.resources.cancel_outstanding()  # -x / --maxfail: do not wait for runs nobody will read

    def finish(self, session: pytest.Session) -> None:
        """Session finish: cancel what nobody will read; the owner decides and writes evidence."""
        self.resources.cancel_outstanding()
        if self.owner is not None:
            self.owner.finish(session)

    def close(self) -> None:
        """Unconfigure: close connections, stop the embedded server."""
        self.resources.close()


class Local(Role):
    """The single pytest process: owns the gate and runs the tests."""

    def collected(self, items: list[pytest.Item]) -> None:
        super().collected(items)
        if self.owner is not None:
            self.owner.collected(
                len(items), [item.nodeid for item in self.smoke.items], self.smoke.critical_nodeids()
            )

    def run_loop(self, session: pytest.Session) -> bool | None:
        if super().run_loop(session):
            return True
        # pytest's own run loop stops at once after collection errors: start nothing then.
        keep_going = session.config.getoption("continue_on_collection_errors")
        collection_failed = session.testsfailed and not keep_going
        if self.owner is not None and self.owner.gated and not collection_failed:
            self.smoke.dispatch(self.smoke.items)
        return None


class XdistController(Role):
    """The xdist controller: owns the gate, runs no test (its hooks come from xdist)."""

    def configure_node(self, node: Any) -> None:
        """``pytest_configure_node``: give the worker the connection."""
        conn = self.resources.connection
        if conn is not None:
            node.workerinput[WORKERINPUT_KEY] = conn.to_dict()

    def node_collected(self, ids: list[str]) -> None:
        """``pytest_xdist_node_collection_finished``: every worker collects the same ids, the first
        report is enough; the verification re-run repeats them all."""
        if self.owner is not None:
            self.owner.collected(len(ids), ids)

    def node_down(self, node: Any, error: Any) -> None:
        """``pytest_testnodedown``: a worker that went down with an error, or without saying it
        finished (unless fail-fast stopped it), crashed."""
        owner = self.owner
        if owner is None:
            return
        output = getattr(node, "workeroutput", {}) or {}
        worker = output.get(WORKEROUTPUT_KEY) or {}
        if isinstance(worker.get(DESELECTED), int):
            owner.worker_deselected(worker[DESELECTED])
        unfinished = owner.gated and WORKEROUTPUT_KEY not in output and not owner.fail_fast_reason
        if error is not None or unfinished:
            owner.worker_crashed(_compat.xdist_worker_id(node))


class XdistWorker(Role):
    """An xdist worker: runs the tests it is handed, reports back, owns no gate."""

    @staticmethod
    def connection(config: pytest.Config) -> Connection | None:
        """The controller's connection from ``workerinput`` (None without an endpoint)."""
        data = getattr(config, "workerinput", {}).get(WORKERINPUT_KEY)
        return Connection.from_dict(data) if data else None

    def before_test(self, item: pytest.Item) -> None:
        super().before_test(item)
        # Start the runs of every test xdist handed this worker since the last look.
        indices = _compat.xdist_pending_indices(self.config)
        if indices is None:
            return  # xdist's queue is not readable: each run starts when its test does
        items = self.smoke.all_items
        self.smoke.dispatch([items[i] for i in indices if 0 <= i < len(items)])

    def finish(self, session: pytest.Session) -> None:
        super().finish(session)
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[WORKEROUTPUT_KEY] = {FINISHED: True, DESELECTED: self.deselected_count}
