"""Which process does what, one class per role (as pytest-cov's engine), and every key of the
channel between an xdist controller and its workers.

- ``Local``: the single pytest process. It owns the gate and runs the tests: it starts every
  marker-declared run at once when the run phase begins.
- ``XdistController``: owns the gate and runs no test. It hands each worker (``workerinput``)
  the remote connection, or the embedded server's token, and a rendezvous directory; takes the
  selection from the first worker that collected and the critical tests from every worker; starts
  the embedded server and runs the preflight once a worker collected a smoke test; folds the
  workers' reports in as they arrive, and counts a worker that went down unfinished as crashed.
- ``XdistWorker``: runs the tests the controller hands it, starting the runs of every test it
  already owns (its queue), and reports back; it owns no gate.

The rendezvous (a private temporary directory of the controller, ``Rendezvous``) carries what
xdist's channel cannot carry at the right time: the controller hands ``workerinput`` over before
any worker collected, and only a worker's collection says whether the session needs the platform.
Each worker writes ``collected-<worker>.json`` (smoke tests selected? which are critical?) before
xdist tells the controller its collection finished; the controller, in
``pytest_xdist_node_collection_finished`` (before xdist schedules a test), starts the server and
runs the preflight if one did, and writes ``platform.json`` (addresses and the preflight's
result, never the token, which went over ``workerinput``); a worker reads it when its first smoke
test needs the platform.

``plugin`` creates one role object per process at configure and its hooks call the role.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from pytest_scriptum import _compat
from pytest_scriptum._options import ScriptumConfig
from pytest_scriptum._session.resources import Connection, PlatformUnavailable, SessionResources
from pytest_scriptum.evidence._files import write_atomic

if TYPE_CHECKING:
    from pytest_scriptum._session.gate_owner import GateOwner
    from pytest_scriptum._session.shard import ShardSplit
    from pytest_scriptum._session.smoke import SmokeTests

__all__ = [
    "DESELECTED",
    "FINISHED",
    "REPORT_ATTR",
    "WORKERINPUT_KEY",
    "WORKEROUTPUT_KEY",
    "Local",
    "Rendezvous",
    "Role",
    "XdistController",
    "XdistWorker",
]

# -- the channel ---------------------------------------------------------------------------------
WORKERINPUT_KEY: Final = "scriptum"
"""controller -> worker, in ``workerinput`` (over execnet, never argv): ``{CONNECTION:
Connection.to_dict() or None, EMBEDDED: {"token", "org"} or None, RENDEZVOUS: directory}``."""
CONNECTION: Final = "connection"
EMBEDDED: Final = "embedded"
RENDEZVOUS: Final = "rendezvous"

PLATFORM_WAIT_S: Final = 120.0
"""How long a worker waits for the controller's ``platform.json`` (server start + preflight; the
controller writes it before xdist schedules any test, so the wait is normally nil)."""

WORKEROUTPUT_KEY: Final = "scriptum"
"""worker -> controller, in ``workeroutput``: ``{FINISHED: True}`` once the worker's session ended
normally; a worker that goes down without it crashed."""

FINISHED: Final = "finished"
DESELECTED: Final = "deselected"
"""worker -> controller, in the same dict: how many tests the worker's collection deselected."""

REPORT_ATTR: Final = "scriptum"
"""The attribute of every smoke test's report that carries its ``records.ReportRecord`` as a dict
(xdist serialises report attributes; in a single process it is read off the same report)."""


class Rendezvous:
    """The controller's private directory shared with its workers (``tempfile.mkdtemp``: mode 0700).

    Files are written atomically (a reader never sees half a file) and hold no secret.
    """

    PLATFORM: Final = "platform.json"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def create(cls) -> Rendezvous:
        """A fresh directory (the controller's, removed by ``remove``)."""
        return cls(Path(tempfile.mkdtemp(prefix="scriptum-xdist-")))

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _write(self, name: str, data: dict[str, Any]) -> None:
        write_atomic(self.directory / name, json.dumps(data))

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.directory / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    # worker -> controller
    def write_collected(self, worker: str, *, smoke: bool, critical: list[str]) -> None:
        """What a worker's collection selected: any smoke test, and the critical ones."""
        self._write(f"collected-{worker}.json", {"smoke": smoke, "critical": critical})

    def read_collected(self, worker: str) -> tuple[bool, list[str]] | None:
        """(smoke selected, critical node ids) of a worker, None if it wrote nothing."""
        data = self._read(f"collected-{worker}.json")
        if data is None:
            return None
        critical = [c for c in data.get("critical", ()) if isinstance(c, str)]
        return bool(data.get("smoke")), critical

    # controller -> workers
    def write_platform(
        self,
        connection: Connection | None,
        problem: str | None,
        published: int | None = None,
        *,
        baseline: int | None = None,
    ) -> None:
        """Where the platform is (no token) or why no smoke test may use it, the version the
        controller published (``--scriptum-publish``: every worker's runs are pinned to it) and
        ``baseline``: the rollback target the paired baseline runs on (``--scriptum-baseline=paired``)."""
        where = None
        if connection is not None:
            where = {"endpoint": connection.endpoint, "http_url": connection.http_url}
        self._write(
            self.PLATFORM, {"where": where, "problem": problem, "published": published, "baseline": baseline}
        )

    def published(self) -> int | None:
        """The version the controller published (None: none), once ``platform.json`` is there."""
        data = self._read(self.PLATFORM) or {}
        value = data.get("published")
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None

    def published_baseline(self) -> int | None:
        """The rollback target the controller published with the platform (None: none)."""
        data = self._read(self.PLATFORM) or {}
        baseline = data.get("baseline")
        return baseline if isinstance(baseline, int) and not isinstance(baseline, bool) else None

    def await_platform(self, given: Connection, *, timeout: float = PLATFORM_WAIT_S) -> Connection:
        """The connection the controller published: ``given`` (the worker's, from ``workerinput``)
        with the published addresses. PlatformUnavailable when the controller says why not, or
        publishes nothing within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (data := self._read(self.PLATFORM)) is None:
            if time.monotonic() >= deadline:
                raise PlatformUnavailable(
                    f"the xdist controller published no platform within {timeout:g} s "
                    f"({self.directory / self.PLATFORM}); see the controller's output"
                )
            time.sleep(0.05)  # a bounded wait for another process's file, not a hope
        problem = data.get("problem")
        if isinstance(problem, str) and problem:
            raise PlatformUnavailable(problem)
        where = data.get("where")
        if not isinstance(where, dict):
            return given
        return Connection(**{**given.to_dict(), **where})


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
        self.shard: ShardSplit | None = None  # --scriptum-shard: this shard's part of the selection

    def start(self) -> None:
        """Session start: the gate's owner checks its options; nothing contacts the platform yet."""
        if self.owner is not None:
            self.owner.start()

    def item_collected(self, item: pytest.Item) -> None:
        """``pytest_itemcollected`` in this process (before deselection)."""

    def collected(self, items: list[pytest.Item]) -> None:
        """The selected items of this process (the plugin's trylast ``pytest_collection_modifyitems``:
        after -k/-m/--deselect, so a shard splits the selection)."""
        if self.shard is not None:
            self.shard.split(self.config, items)  # in place, before anything reads the selection
        self.smoke.collected(items)

    def collection_finished(self) -> None:
        """``pytest_collection_finish`` (tryfirst): collection and deselection are done."""

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

    def _platform_lines(self) -> list[str]:
        """What the preflight found, printed before the first test (the report header is printed
        before collection, so before the preflight)."""
        owner = self.owner
        preflight = owner.preflight if owner is not None else None
        if preflight is None:
            return []
        lines = []
        if preflight.api is not None and preflight.api.descriptors == "bundled":
            lines.append(
                "scriptum: descriptors: bundled (the server offers no reflection; requests use the plugin's "
                "own field numbers, checked by echo probes in preflight)"
            )
        failure = preflight.failure
        lines.append(f"scriptum: preflight failed: {failure}" if failure else "scriptum: preflight passed")
        return lines

    def _say(self, lines: list[str]) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        for line in lines:
            if reporter is not None:
                reporter.write_line(line)


class Local(Role):
    """The single pytest process: owns the gate and runs the tests."""

    def item_collected(self, item: pytest.Item) -> None:
        # The first collected smoke test starts the embedded server in the background, so it is up
        # by the time collection ends (DESIGN section 6); deselection may still make it unused.
        owner = self.owner
        if owner is None or not owner.gated or not self.resources.cfg.embedded or owner.preflight is not None:
            return
        if not self.resources.embedded_started() and _is_smoke(item):
            self.resources.start_embedded()

    def collected(self, items: list[pytest.Item]) -> None:
        super().collected(items)
        if self.owner is not None:
            self.owner.collected(
                len(items), [item.nodeid for item in self.smoke.items], self.smoke.critical_nodeids()
            )

    def collection_finished(self) -> None:
        if not self.smoke.items:
            self.resources.stop_unused_embedded()  # every smoke test was deselected

    def run_loop(self, session: pytest.Session) -> bool | None:
        # pytest's own run loop stops at once after collection errors: start nothing then.
        keep_going = session.config.getoption("continue_on_collection_errors")
        collection_failed = bool(session.testsfailed) and not keep_going
        if self.owner is not None:
            self.owner.start(smoke_selected=bool(self.smoke.items) and not collection_failed)
            self._say(self._platform_lines())
        if super().run_loop(session):
            return True
        if self.owner is not None and self.owner.gated and not collection_failed:
            self.smoke.dispatch(self.smoke.items)
        return None


class XdistController(Role):
    """The xdist controller: owns the gate, runs no test (its hooks come from xdist)."""

    def __init__(
        self,
        config: pytest.Config,
        resources: SessionResources,
        smoke: SmokeTests,
        owner: GateOwner | None = None,
    ) -> None:
        super().__init__(config, resources, smoke, owner)
        self.rendezvous: Rendezvous | None = None
        self._published = False

    def configure_node(self, node: Any) -> None:
        """``pytest_configure_node``: give the worker the connection (or the embedded server's
        token) and the rendezvous directory."""
        cfg = self.resources.cfg
        owner = self.owner
        embedded = None
        if owner is not None and owner.gated and cfg.embedded and owner.listing is None:
            server = self.resources.embedded_server()
            embedded = {"token": server.token, "org": server.org}
        conn = self.resources.connection
        if conn is None and embedded is None:
            return
        if self.rendezvous is None:
            self.rendezvous = Rendezvous.create()
        node.workerinput[WORKERINPUT_KEY] = {
            CONNECTION: conn.to_dict() if conn is not None else None,
            EMBEDDED: embedded,
            RENDEZVOUS: str(self.rendezvous.directory),
        }

    def node_collected(self, node: Any, ids: list[str]) -> None:
        """``pytest_xdist_node_collection_finished`` (before xdist schedules anything): the
        selection from the first worker, the critical tests of every worker (one that a worker
        never runs is undecided, DESIGN section 3 "Verdict"), and the platform once a worker
        collected a smoke test: the embedded server and the preflight (DESIGN section 3 "Run modes")."""
        owner = self.owner
        if owner is None:
            return
        collected = None
        if self.rendezvous is not None:
            collected = self.rendezvous.read_collected(_compat.xdist_worker_id(node))
        # A worker that wrote nothing (its collection_finish never ran; a worker on another host
        # does not share the directory) may hold smoke tests: never skip the preflight on a guess.
        smoke, critical = collected if collected is not None else (True, [])
        owner.collected(len(ids), ids, critical)
        # Every worker's critical tests count (a conftest may select differently per worker).
        owner.critical_nodeids.extend(c for c in critical if c not in owner.critical_nodeids)
        if not smoke or self._published:
            owner.start(smoke_selected=False)
            return
        self._published = True
        problem: str | None = None
        try:
            owner.start(smoke_selected=True)
        except pytest.UsageError as exc:
            owner.usage_error = problem = str(exc)
        else:
            self._say(self._platform_lines())
            if owner.preflight_failed:
                problem = f"preflight failed: {owner.preflight.failure if owner.preflight else ''}"
        if self.rendezvous is not None:
            target = owner.preflight.target if owner.preflight is not None else None
            self.rendezvous.write_platform(
                self.resources.connection, problem, self.resources.published, baseline=target
            )
        if problem is not None:
            _compat.xdist_request_stop(self.config, f"scriptum: {problem}")

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

    def close(self) -> None:
        super().close()
        if self.rendezvous is not None:
            self.rendezvous.remove()


class XdistWorker(Role):
    """An xdist worker: runs the tests the controller hands it, reports back, owns no gate."""

    @staticmethod
    def channel(config: pytest.Config) -> tuple[Connection | None, Rendezvous | None]:
        """What the controller handed this worker in ``workerinput``: the connection (for the
        embedded server, its token with the addresses still to come) and the rendezvous."""
        data = getattr(config, "workerinput", {}).get(WORKERINPUT_KEY)
        if not data:
            return None, None
        rendezvous = Rendezvous(Path(data[RENDEZVOUS])) if data.get(RENDEZVOUS) else None
        if data.get(CONNECTION):
            return Connection.from_dict(data[CONNECTION]), rendezvous
        embedded = data.get(EMBEDDED)
        if embedded:
            # The addresses come once the server is up (Rendezvous.await_platform); the token now.
            pending = Connection(
                endpoint="", http_url=None, org=embedded["org"], token=embedded["token"], embedded=True
            )
            return pending, rendezvous
        return None, rendezvous

    @classmethod
    def resources_for(cls, config: pytest.Config, cfg: ScriptumConfig) -> SessionResources:
        """This worker's resources: the connection waits for the controller's ``platform.json``
        when the worker's first smoke test needs it."""
        given, rendezvous = cls.channel(config)
        if given is None or rendezvous is None:
            return SessionResources(cfg, given)
        # ``given`` at once (its token is masked from the start), the published one on first use,
        # with the version the controller published, if it did (before any run is pinned), and the
        # paired baseline's rollback target.
        made: list[SessionResources] = []

        def awaiting() -> Connection:
            connection = rendezvous.await_platform(given)
            made[0].published = rendezvous.published()
            made[0].baseline_target = rendezvous.published_baseline()  # the controller's preflight's
            return connection

        made.append(SessionResources(cfg, given, awaiting=awaiting))
        return made[0]

    def collection_finished(self) -> None:
        # Before xdist's own hook tells the controller this worker's collection finished.
        _, rendezvous = self.channel(self.config)
        smoke = bool(self.smoke.items) and not self.smoke.usage_problem
        if rendezvous is not None:
            rendezvous.write_collected(
                _compat.xdist_own_worker_id(self.config), smoke=smoke, critical=self.smoke.critical_nodeids()
            )
        if not smoke:
            self.resources.forgo_platform(
                "this xdist worker selected no smoke test, so the controller publishes no platform for it"
            )

    def before_test(self, item: pytest.Item) -> None:
        super().before_test(item)
        if not self.smoke.items or self.smoke.usage_problem or not self.resources.cfg.has_candidate:
            return  # nothing to start (a usage problem fails each smoke test instead)
        if self.resources.platform_problem() is not None:
            return  # no smoke test may use the platform: each one says why at its setup
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


def _is_smoke(item: pytest.Item) -> bool:
    from pytest_scriptum._session.smoke import is_smoke  # smoke imports this module

    return is_smoke(item)
