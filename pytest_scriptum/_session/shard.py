"""``--scriptum-shard=I/N``: this session runs one shard of the selected smoke tests (DESIGN
section 8 "Sharded CI gate"; issue 17).

The split is a round robin over the selected smoke tests' node ids in sorted order: the smoke test
at position ``p`` of that list belongs to shard ``p % N + 1``. It depends on nothing but the suite's
node-id list (not on collection order, xdist, ``-p randomly`` or the machine), every shard gets
``floor(n/N)`` or ``ceil(n/N)`` tests, and the merge (``scriptum-gate merge``) checks that every
shard saw the same list, so the shards cover the suite exactly once. Tests that are not smoke tests
run in shard 1 only (they are the suite's own checks, not a candidate's: running them N times
proves nothing more).

Why not pytest-split (``--splits N --group I``): it splits every collected test, not the smoke
tests, balances by a ``.test_durations`` file the shards would have to share, and knows nothing of
the suite list the merge needs; the CI matrix and xdist already are the distributed engine, the
split only has to be stable.

Under xdist every worker collects and splits alike (xdist checks the workers collected the same
ids); the controller collects nothing, so one worker writes the shard's record into the
controller's rendezvous directory (``shard.json``) for the bundle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from pytest_scriptum._options import Shard
from pytest_scriptum._session.smoke import is_smoke
from pytest_scriptum._session.xdist import RENDEZVOUS, WORKERINPUT_KEY, XdistWorker
from pytest_scriptum.evidence._files import write_atomic

__all__ = ["PLUGIN_NAME", "ShardRecord", "ShardSplit", "nodeids_sha", "shard_of"]

PLUGIN_NAME: Final = "scriptum-shard"
_RECORD_FILE: Final = "shard.json"


def shard_of(position: int, total: int) -> int:
    """The 1-based shard of the smoke test at ``position`` (0-based) of the sorted suite list."""
    return position % total + 1


def nodeids_sha(nodeids: Sequence[str]) -> str:
    """SHA-256 (hex) of the node ids, sorted, one a line: the same set gives the same digest."""
    return hashlib.sha256("\n".join(sorted(nodeids)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ShardRecord:
    """What the bundle says about a shard: ``index``/``total`` (``--scriptum-shard``), the smoke
    node ids this shard ran (``nodeids``) and their ``nodeids_sha``, and ``suite_nodeids``: every
    selected smoke node id of the whole suite, sorted (what the merge checks coverage against), and
    the ``inifile``."""

    index: int
    total: int
    nodeids: tuple[str, ...]
    suite_nodeids: tuple[str, ...]
    inifile: str | None = None
    """The suite's ini file relative to its rootdir (what the merge's verification re-run needs
    with the node ids, in the merge job's own checkout); None without an ini file."""

    @property
    def nodeids_sha(self) -> str:
        return nodeids_sha(self.nodeids)

    def as_dict(self) -> dict[str, Any]:
        """The bundle's ``shard`` object (the suite list is the bundle's own ``suite_nodeids``)."""
        return {
            "index": self.index,
            "total": self.total,
            "nodeids_sha": self.nodeids_sha,
            "inifile": self.inifile,
        }

    def to_json(self) -> str:
        return json.dumps({
            "index": self.index,
            "total": self.total,
            "nodeids": list(self.nodeids),
            "suite_nodeids": list(self.suite_nodeids),
            "inifile": self.inifile,
        })

    @classmethod
    def from_json(cls, text: str) -> ShardRecord | None:
        try:
            data = json.loads(text)
            return cls(
                int(data["index"]),
                int(data["total"]),
                tuple(str(n) for n in data["nodeids"]),
                tuple(str(n) for n in data["suite_nodeids"]),
                None if data.get("inifile") is None else str(data["inifile"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


def _inifile(config: pytest.Config) -> str | None:
    if config.inipath is None:
        return None
    try:
        return config.inipath.relative_to(config.rootpath).as_posix()
    except ValueError:  # an ini file outside the rootdir (-c elsewhere): only its name travels
        return config.inipath.name


class ShardSplit:
    """Registered as ``PLUGIN_NAME`` when ``--scriptum-shard`` is set: ``split`` deselects the
    other shards' tests and keeps this shard's ``record``."""

    def __init__(self, config: pytest.Config, shard: Shard) -> None:
        self.config = config
        self.shard = shard
        self._record: ShardRecord | None = None
        self._rendezvous: Path | None = None

    def split(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Keep this shard's tests in ``items`` (in place; the rest go to ``pytest_deselected``).
        Called from the plugin's trylast ``pytest_collection_modifyitems``: after -k/-m/--deselect
        (so the suite is the selection), before the session reads the selection."""
        suite = sorted({item.nodeid for item in items if is_smoke(item)})
        position = {nodeid: p for p, nodeid in enumerate(suite)}
        index, total = self.shard.index, self.shard.total
        keep: list[pytest.Item] = []
        drop: list[pytest.Item] = []
        for item in items:
            if item.nodeid in position:
                mine = shard_of(position[item.nodeid], total) == index
            else:
                mine = index == 1  # not a smoke test: shard 1 only
            (keep if mine else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
        ran = tuple(n for n in suite if shard_of(position[n], total) == index)
        self._record = ShardRecord(index, total, ran, tuple(suite), _inifile(config))
        directory = XdistWorker.channel(config)[1]
        if directory is not None:
            write_atomic(directory.directory / _RECORD_FILE, self._record.to_json())

    @pytest.hookimpl(optionalhook=True, trylast=True)
    def pytest_configure_node(self, node: Any) -> None:
        # The xdist controller: where its workers write the record (set by the plugin's own hook,
        # which runs before this trylast one).
        data = getattr(node, "workerinput", {}).get(WORKERINPUT_KEY) or {}
        if data.get(RENDEZVOUS):
            self._rendezvous = Path(data[RENDEZVOUS])

    def record(self) -> ShardRecord | None:
        """This shard's record; on an xdist controller, the one its workers wrote (None when no
        test was collected)."""
        if self._record is None and self._rendezvous is not None:
            try:
                self._record = ShardRecord.from_json((self._rendezvous / _RECORD_FILE).read_text("utf-8"))
            except OSError:
                return None
        return self._record

    @classmethod
    def of(cls, config: pytest.Config) -> ShardSplit | None:
        """The session's split, None when ``--scriptum-shard`` is not set."""
        plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
        return plugin if isinstance(plugin, ShardSplit) else None

    @classmethod
    def install(cls, config: pytest.Config, shard: Shard | None) -> None:
        """Register the split for this process when ``shard`` is set (a verification re-run never
        has one: it repeats the node ids it is given)."""
        if shard is not None:
            config.pluginmanager.register(cls(config, shard), PLUGIN_NAME)
