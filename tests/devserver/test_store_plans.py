"""Every hot query of the store uses an index (issue 18): proven with SQLite's own EXPLAIN QUERY
PLAN on the statements a real server executes while it serves a smoke run and the reads around it.

The statements are recorded as prepared (SQL with `?` placeholders, before binding): that is what
SQLite plans, and a bound value the planner cannot see (is this request id ''?) is exactly what
made the request-id lookup walk every thread of the organization.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from kit import AUTH, ORG, TOKEN
from kit.constants import CHANNEL_OPTIONS
from kit.seeds import DEVSERVER_SEED as SEED
from kit.transports import GrpcTransport, create, settle

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.devserver import DevServer
from pytest_scriptum.devserver._store import Store

_INDEXED = ("USING INDEX", "USING COVERING INDEX", "USING INTEGER PRIMARY KEY", "USING PRIMARY KEY")


class _Recording:
    """The store's connection, recording every statement it prepares (and delegating it)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        self.statements.append((sql, tuple(params)))
        return self.conn.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[GrpcTransport, _Recording]]:
    with DevServer(data_dir=tmp_path / "data", seed=SEED, principals={TOKEN: ORG}) as server:
        store: Store = server._store  # type: ignore[assignment]
        recording = _Recording(store._conn)
        store._conn = recording  # type: ignore[assignment]
        with grpc.insecure_channel(server.addresses.grpc, options=CHANNEL_OPTIONS) as channel:
            yield GrpcTransport(channel, AUTH), recording
        store._conn = recording.conn


def _plan(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[str]:
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def test_every_thread_query_of_a_run_and_its_reads_uses_an_index(
    recorded: tuple[GrpcTransport, _Recording],
) -> None:
    t, recording = recorded
    metadata = {"scriptum.request_id": "req-1"}
    first = create(t, "echo", 2, {"text": "a"}, metadata=metadata)
    assert create(t, "echo", 2, {"text": "a"}, metadata=metadata) == first  # answered from the request id
    assert settle(t, first).status == pb.THREAD_STATUS_COMPLETED
    t.call("GetThread", pb.GetThreadRequest(thread_id=first))
    t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=first))
    t.call("GetThreadResult", pb.GetThreadResultRequest(thread_id=first, step_path="1"))
    t.call("GetScript", pb.GetScriptRequest(name="echo"))
    t.call("ListScriptVersions", pb.ListScriptVersionsRequest(name="echo"))
    t.call("GetScriptVersion", pb.GetScriptVersionRequest(name="echo", version=2))
    for request in (
        pb.ListThreadsRequest(),
        pb.ListThreadsRequest(script_name_filter="echo"),
        pb.ListThreadsRequest(status_filter=pb.THREAD_STATUS_COMPLETED),
        pb.ListThreadsRequest(status_filter=pb.THREAD_STATUS_RUNNING),
        pb.ListThreadsRequest(
            script_name_filter="echo", status_filter=pb.THREAD_STATUS_COMPLETED, page_size=1
        ),
    ):
        t.call("ListThreads", request)
    create(t, "echo", 2, {"text": "b"})
    page = t.call("ListThreads", pb.ListThreadsRequest(script_name_filter="echo", page_size=1))
    assert page.next_page_token
    t.call("ListThreads", pb.ListThreadsRequest(script_name_filter="echo", page_token=page.next_page_token))
    t.call(
        "RollbackScript",
        pb.RollbackScriptRequest(name="echo", to_version=3, expected_active_version=4, rollback_id="rb-1"),
    )

    queried = [(sql, params) for sql, params in recording.statements if " threads" in sql or "FROM " in sql]
    assert any("request_id = ?" in sql for sql, _ in queried), "the request-id lookup never ran"
    assert any("AND status IN" in sql for sql, _ in queried), "no status filter ran"
    problems = []
    for sql, params in queried:
        plan = _plan(recording.conn, sql, params)
        scans = [step for step in plan if step.startswith("SCAN")]
        if scans or (plan and not any(marker in step for step in plan for marker in _INDEXED)):
            problems.append(f"{sql}\n    -> {plan}")
    assert not problems, "queries that are not indexed:\n" + "\n".join(problems)


def test_the_request_id_lookup_uses_the_request_id_index(recorded: tuple[GrpcTransport, _Recording]) -> None:
    t, recording = recorded
    create(t, "echo", 2, {"text": "a"}, metadata={"scriptum.request_id": "req-2"})
    lookups = [(sql, params) for sql, params in recording.statements if "request_id = ?" in sql]
    assert lookups
    for sql, params in lookups:
        plan = " ".join(_plan(recording.conn, sql, params))
        # Not merely "an index": threads_by_time (org=?) is one too, and walks the whole org.
        assert "threads_request_id (org=? AND request_id=?)" in plan, plan


def test_startup_after_a_crash_finds_unfinished_threads_by_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    try:
        recording = _Recording(store._conn)
        store._conn = recording  # type: ignore[assignment]
        store.fail_unfinished_threads()
        (sql, params), *_ = [(s, p) for s, p in recording.statements if s.startswith("UPDATE threads")]
        plan = " ".join(_plan(recording.conn, sql, params))
        assert "threads_by_status (status=?)" in plan and "SCAN" not in plan, plan
    finally:
        store.close()


def test_a_throwaway_store_does_not_fsync_and_a_kept_one_does(tmp_path: Path) -> None:
    kept, throwaway = Store(tmp_path / "kept"), Store(tmp_path / "throwaway", durable=False)
    try:
        # PRAGMA synchronous: 0 = OFF (no fsync per commit), 2 = FULL.
        assert kept._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert throwaway._conn.execute("PRAGMA synchronous").fetchone()[0] == 0
        assert kept._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        kept.close()
        throwaway.close()
