"""SQLite persistence of every organization's state (WAL, durable across kill -9).

One connection guarded by a lock: statements are short, and a single writer keeps every
check-and-write (compare-and-set, request-id reuse) trivially atomic. Transactions that check
and then write use BEGIN IMMEDIATE so no other writer can slip in between.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._errors import not_found, precondition
from ._seed import Seed

__all__ = ["DB_FILENAME", "NewThread", "Store", "sha256_hex"]

DB_FILENAME = "scriptum.sqlite3"
_SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenant_env (
    org TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (org, key));
CREATE TABLE IF NOT EXISTS scripts (
    org TEXT NOT NULL, name TEXT NOT NULL, active_version INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    draft_source TEXT, draft_input_schema TEXT, draft_output_schema TEXT, draft_updated_at INTEGER,
    PRIMARY KEY (org, name));
CREATE TABLE IF NOT EXISTS overlay (
    org TEXT NOT NULL, script TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    updated_at INTEGER NOT NULL, PRIMARY KEY (org, script, key));
CREATE TABLE IF NOT EXISTS versions (
    org TEXT NOT NULL, script TEXT NOT NULL, version INTEGER NOT NULL, source TEXT NOT NULL,
    source_sha256 TEXT NOT NULL, input_schema_json TEXT NOT NULL, output_schema_json TEXT NOT NULL,
    created_at INTEGER NOT NULL, PRIMARY KEY (org, script, version));
CREATE TABLE IF NOT EXISTS activations (
    org TEXT NOT NULL, script TEXT NOT NULL, sequence INTEGER NOT NULL, version INTEGER NOT NULL,
    from_version INTEGER NOT NULL, kind INTEGER NOT NULL, reason TEXT NOT NULL,
    incident_id TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (org, script, sequence));
CREATE TABLE IF NOT EXISTS rolled_back_from (
    org TEXT NOT NULL, script TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (org, script, version));
CREATE TABLE IF NOT EXISTS threads (
    thread_id TEXT PRIMARY KEY, org TEXT NOT NULL, script TEXT NOT NULL, version INTEGER NOT NULL,
    requested_version INTEGER NOT NULL, status INTEGER NOT NULL, input_json TEXT NOT NULL,
    output_json TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',
    steps_json TEXT NOT NULL DEFAULT '[]', env_resolved INTEGER NOT NULL,
    env_keys_json TEXT NOT NULL DEFAULT '[]', request_id TEXT NOT NULL,
    created_at INTEGER NOT NULL, finished_at INTEGER, duration_ms REAL NOT NULL DEFAULT 0,
    timeout_seconds REAL NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS threads_request_id ON threads (org, request_id) WHERE request_id != '';
"""

FINAL_STATUSES = frozenset({pb.SUCCEEDED, pb.FAILED, pb.TIMED_OUT, pb.CANCELLED})


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of the UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _timestamp(ns: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp


@dataclass(frozen=True)
class NewThread:
    """What RunThread stores before it executes anything."""

    org: str
    script: str
    version: int
    requested_version: int
    input_json: str
    env_resolved: bool
    request_id: str
    timeout_seconds: float


class Store:
    """All persistent state, keyed by organization."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_FILENAME
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed change survives not only a killed process but a lost machine.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(_SCHEMA)
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (_SCHEMA_VERSION,)
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    # ---- life cycle -------------------------------------------------------------------------

    def is_initialized(self) -> bool:
        """Whether this data directory has been set up (seeded or started empty) before."""
        with self._read() as db:
            return db.execute("SELECT 1 FROM meta WHERE key = 'initialized'").fetchone() is not None

    def initialize(self, org: str, seed: Seed | None) -> None:
        """Seed `org` (if a seed is given) and mark the data directory as set up, atomically."""
        now = time.time_ns()
        with self._tx() as db:
            if seed is not None:
                for key, value in seed.tenant_env.items():
                    db.execute(
                        "INSERT OR REPLACE INTO tenant_env VALUES (?, ?, ?, ?)", (org, key, value, now)
                    )
                for script in seed.scripts:
                    db.execute(
                        "INSERT INTO scripts (org, name, created_at) VALUES (?, ?, ?)",
                        (org, script.name, now),
                    )
                    for key, value in script.overlay.items():
                        db.execute(
                            "INSERT INTO overlay VALUES (?, ?, ?, ?, ?)", (org, script.name, key, value, now)
                        )
                    for version in script.versions:
                        db.execute(
                            "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (
                                org,
                                script.name,
                                version.number,
                                version.source,
                                sha256_hex(version.source),
                                version.input_schema_json,
                                version.output_schema_json,
                                now,
                            ),
                        )
                    for version in script.versions:
                        if version.number <= script.active:
                            self._record_activation(
                                db, org, script.name, version.number, pb.ACTIVATE, "seed", "", now
                            )
                    if script.draft_source is not None:
                        db.execute(
                            "UPDATE scripts SET draft_source = ?, draft_input_schema = '',"
                            " draft_output_schema = '',"
                            " draft_updated_at = ? WHERE org = ? AND name = ?",
                            (script.draft_source, now, org, script.name),
                        )
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('initialized', ?)", (str(now),))

    def interrupt_unfinished_threads(self) -> int:
        """Mark threads left QUEUED/RUNNING by a previous process as CANCELLED; returns how many."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE threads SET status = ?, error = ?, finished_at = ? WHERE status IN (?, ?)",
                (
                    pb.CANCELLED,
                    "interrupted: the server stopped while the thread was unfinished",
                    time.time_ns(),
                    pb.QUEUED,
                    pb.RUNNING,
                ),
            )
            return cursor.rowcount

    # ---- tenant env -------------------------------------------------------------------------

    def import_tenant_env(self, org: str, values: Mapping[str, str], replace: bool) -> list[pb.EnvEntry]:
        now = time.time_ns()
        with self._tx() as db:
            if replace:
                db.execute("DELETE FROM tenant_env WHERE org = ?", (org,))
            for key, value in values.items():
                self._upsert_env(db, "tenant_env", (org,), key, value, now)
        return self.list_tenant_env(org)

    def list_tenant_env(self, org: str) -> list[pb.EnvEntry]:
        with self._read() as db:
            rows = db.execute(
                "SELECT key, value, updated_at FROM tenant_env WHERE org = ? ORDER BY key", (org,)
            ).fetchall()
        return [_env_entry(key, value, pb.TENANT, at) for key, value, at in rows]

    def get_tenant_env(self, org: str, key: str) -> pb.EnvEntry | None:
        with self._read() as db:
            row = db.execute(
                "SELECT value, updated_at FROM tenant_env WHERE org = ? AND key = ?", (org, key)
            ).fetchone()
        return None if row is None else _env_entry(key, row[0], pb.TENANT, row[1])

    # ---- script env -------------------------------------------------------------------------

    def script_env(self, org: str, name: str) -> pb.ScriptEnv:
        with self._read() as db:
            self._require_script(db, org, name)
            tenant = db.execute(
                "SELECT key, value, updated_at FROM tenant_env WHERE org = ?", (org,)
            ).fetchall()
            overlay = db.execute(
                "SELECT key, value, updated_at FROM overlay WHERE org = ? AND script = ? ORDER BY key",
                (org, name),
            ).fetchall()
        effective = {key: _env_entry(key, value, pb.TENANT, at) for key, value, at in tenant}
        overlay_entries = [_env_entry(key, value, pb.OVERLAY, at) for key, value, at in overlay]
        for entry in overlay_entries:
            effective[entry.key] = entry
        return pb.ScriptEnv(
            name=name, overlay=overlay_entries, effective=[effective[key] for key in sorted(effective)]
        )

    def update_script_env(
        self, org: str, name: str, set_values: Mapping[str, str], delete: Sequence[str]
    ) -> pb.ScriptEnv:
        now = time.time_ns()
        with self._tx() as db:
            self._require_script(db, org, name)
            for key in delete:
                db.execute("DELETE FROM overlay WHERE org = ? AND script = ? AND key = ?", (org, name, key))
            for key, value in set_values.items():
                self._upsert_env(db, "overlay", (org, name), key, value, now)
        return self.script_env(org, name)

    def effective_env_values(self, org: str, name: str) -> dict[str, str]:
        """The effective env (tenant + overlay, overlay wins) with values, for a run only."""
        with self._read() as db:
            env = dict(db.execute("SELECT key, value FROM tenant_env WHERE org = ?", (org,)).fetchall())
            env.update(
                db.execute(
                    "SELECT key, value FROM overlay WHERE org = ? AND script = ?", (org, name)
                ).fetchall()
            )
        return env

    # ---- drafts and versions ------------------------------------------------------------------

    def put_draft(self, org: str, name: str, source: str, input_schema: str, output_schema: str) -> pb.Draft:
        now = time.time_ns()
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO scripts (org, name, created_at) VALUES (?, ?, ?)", (org, name, now)
            )
            db.execute(
                "UPDATE scripts SET draft_source = ?, draft_input_schema = ?, draft_output_schema = ?,"
                " draft_updated_at = ? WHERE org = ? AND name = ?",
                (source, input_schema, output_schema, now, org, name),
            )
        return pb.Draft(name=name, source_sha256=sha256_hex(source), updated_at=_timestamp(now))

    def publish_draft(self, org: str, name: str) -> pb.Version:
        now = time.time_ns()
        with self._tx() as db:
            self._require_script(db, org, name)
            source, input_schema, output_schema = db.execute(
                "SELECT draft_source, draft_input_schema, draft_output_schema FROM scripts"
                " WHERE org = ? AND name = ?",
                (org, name),
            ).fetchone()
            if source is None:
                raise precondition(f"script {name!r} has no draft to publish (CreateDraft first)")
            number = self._latest_version(db, org, name) + 1
            db.execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (org, name, number, source, sha256_hex(source), input_schema or "", output_schema or "", now),
            )
            db.execute(
                "UPDATE scripts SET draft_source = NULL, draft_input_schema = NULL,"
                " draft_output_schema = NULL,"
                " draft_updated_at = NULL WHERE org = ? AND name = ?",
                (org, name),
            )
        return self.get_version(org, name, number)

    def list_scripts(self, org: str) -> list[pb.Script]:
        with self._read() as db:
            names = [
                row[0] for row in db.execute("SELECT name FROM scripts WHERE org = ? ORDER BY name", (org,))
            ]
            return [self._script(db, org, name) for name in names]

    def get_script(self, org: str, name: str) -> pb.Script:
        with self._read() as db:
            self._require_script(db, org, name)
            return self._script(db, org, name)

    def list_versions(self, org: str, name: str) -> pb.ListVersionsResponse:
        with self._read() as db:
            self._require_script(db, org, name)
            script = self._script(db, org, name)
            rows = db.execute(
                "SELECT version FROM versions WHERE org = ? AND script = ? ORDER BY version", (org, name)
            ).fetchall()
            versions = [self._version(db, org, name, row[0], script) for row in rows]
        return pb.ListVersionsResponse(
            versions=versions, history=script.history, active_version=script.active_version
        )

    def get_version(self, org: str, name: str, version: int) -> pb.Version:
        with self._read() as db:
            self._require_script(db, org, name)
            self._require_version(db, org, name, version)
            return self._version(db, org, name, version, self._script(db, org, name))

    def version_source(self, org: str, name: str, version: int) -> str:
        with self._read() as db:
            self._require_script(db, org, name)
            self._require_version(db, org, name, version)
            row = db.execute(
                "SELECT source FROM versions WHERE org = ? AND script = ? AND version = ?",
                (org, name, version),
            ).fetchone()
        return str(row[0])

    def active_version(self, org: str, name: str) -> int:
        with self._read() as db:
            return self._require_script(db, org, name)

    # ---- activation -------------------------------------------------------------------------

    def activate(self, org: str, name: str, version: int, expected_active: int, reason: str) -> pb.Script:
        with self._tx() as db:
            active = self._require_script(db, org, name)
            self._require_version(db, org, name, version)
            if expected_active > 0 and active != expected_active:
                raise precondition(_cas_message(active, expected_active))
            if version != active:
                self._record_activation(db, org, name, version, pb.ACTIVATE, reason, "", time.time_ns())
            return self._script(db, org, name)

    def rollback(
        self, org: str, name: str, to_version: int, expected_active: int, reason: str, incident_id: str
    ) -> pb.Script:
        with self._tx() as db:
            active = self._require_script(db, org, name)
            self._require_version(db, org, name, to_version)
            if active != expected_active:
                raise precondition(_cas_message(active, expected_active))
            if to_version == active:
                raise precondition(f"version {to_version} is already the active version of {name!r}")
            self._record_activation(
                db, org, name, to_version, pb.ROLLBACK, reason, incident_id, time.time_ns()
            )
            db.execute("INSERT OR IGNORE INTO rolled_back_from VALUES (?, ?, ?)", (org, name, active))
            return self._script(db, org, name)

    # ---- threads ----------------------------------------------------------------------------

    def create_thread(self, new: NewThread) -> tuple[pb.Thread, bool]:
        """Insert a QUEUED thread, or return the thread already holding `new.request_id`.

        Returns (thread, created). Reusing a request id with other arguments is FAILED_PRECONDITION.
        """
        now = time.time_ns()
        with self._tx() as db:
            if new.request_id:
                row = db.execute(
                    "SELECT thread_id, script, requested_version, input_json FROM threads"
                    " WHERE org = ? AND request_id = ?",
                    (new.org, new.request_id),
                ).fetchone()
                if row is not None:
                    thread_id, script, requested_version, input_json = row
                    if (script, requested_version, input_json) != (
                        new.script,
                        new.requested_version,
                        new.input_json,
                    ):
                        raise precondition(
                            f"request_id {new.request_id!r} was already used for a run of {script!r} "
                            f"version {requested_version} with another input; use a new request id"
                        )
                    return self._thread(db, new.org, thread_id), False
            thread_id = uuid.uuid4().hex
            db.execute(
                "INSERT INTO threads (thread_id, org, script, version, requested_version, status, input_json,"
                " env_resolved, request_id, created_at, timeout_seconds)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    thread_id,
                    new.org,
                    new.script,
                    new.version,
                    new.requested_version,
                    pb.QUEUED,
                    new.input_json,
                    int(new.env_resolved),
                    new.request_id,
                    now,
                    new.timeout_seconds,
                ),
            )
            return self._thread(db, new.org, thread_id), True

    def mark_running(self, thread_id: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE threads SET status = ? WHERE thread_id = ? AND status = ?",
                (pb.RUNNING, thread_id, pb.QUEUED),
            )

    def finish_thread(
        self,
        thread_id: str,
        *,
        status: int,
        output_json: str,
        error: str,
        steps: Sequence[pb.Step],
        env_keys: Sequence[str],
        duration_ms: float,
    ) -> None:
        steps_json = json.dumps(
            [[s.name, s.status, s.offset_ms, s.duration_ms, s.error] for s in steps], allow_nan=False
        )
        with self._tx() as db:
            db.execute(
                "UPDATE threads SET status = ?, output_json = ?, error = ?, steps_json = ?,"
                " env_keys_json = ?,"
                " duration_ms = ?, finished_at = ? WHERE thread_id = ?",
                (
                    status,
                    output_json,
                    error,
                    steps_json,
                    json.dumps(list(env_keys)),
                    duration_ms,
                    time.time_ns(),
                    thread_id,
                ),
            )

    def get_thread(self, org: str, thread_id: str) -> pb.Thread:
        with self._read() as db:
            return self._thread(db, org, thread_id)

    # ---- helpers (lock held) ------------------------------------------------------------------

    def _require_script(self, db: sqlite3.Connection, org: str, name: str) -> int:
        row = db.execute(
            "SELECT active_version FROM scripts WHERE org = ? AND name = ?", (org, name)
        ).fetchone()
        if row is None:
            raise not_found(f"script {name!r} not found")
        return int(row[0])

    def _require_version(self, db: sqlite3.Connection, org: str, name: str, version: int) -> None:
        exists = db.execute(
            "SELECT 1 FROM versions WHERE org = ? AND script = ? AND version = ?", (org, name, version)
        ).fetchone()
        if exists is None:
            latest = self._latest_version(db, org, name)
            raise not_found(f"script {name!r} has no version {version} (latest is {latest})")

    def _latest_version(self, db: sqlite3.Connection, org: str, name: str) -> int:
        row = db.execute(
            "SELECT MAX(version) FROM versions WHERE org = ? AND script = ?", (org, name)
        ).fetchone()
        return int(row[0] or 0)

    def _record_activation(
        self,
        db: sqlite3.Connection,
        org: str,
        name: str,
        version: int,
        kind: int,
        reason: str,
        incident_id: str,
        at: int,
    ) -> None:
        active, sequence = db.execute(
            "SELECT s.active_version, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM activations"
            " WHERE org = s.org AND script = s.name) FROM scripts s WHERE s.org = ? AND s.name = ?",
            (org, name),
        ).fetchone()
        db.execute(
            "INSERT INTO activations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (org, name, sequence, version, active, kind, reason, incident_id, at),
        )
        db.execute("UPDATE scripts SET active_version = ? WHERE org = ? AND name = ?", (version, org, name))

    def _upsert_env(
        self, db: sqlite3.Connection, table: str, scope: tuple[str, ...], key: str, value: str, now: int
    ) -> None:
        # Keep updated_at when the value did not change, so the timestamp means "last changed".
        where = "org = ? AND key = ?" if table == "tenant_env" else "org = ? AND script = ? AND key = ?"
        row = db.execute(f"SELECT value FROM {table} WHERE {where}", (*scope, key)).fetchone()
        if row is not None and row[0] == value:
            return
        placeholders = ", ".join("?" * (len(scope) + 3))
        db.execute(f"INSERT OR REPLACE INTO {table} VALUES ({placeholders})", (*scope, key, value, now))

    def _script(self, db: sqlite3.Connection, org: str, name: str) -> pb.Script:
        active, has_draft = db.execute(
            "SELECT active_version, draft_source IS NOT NULL FROM scripts WHERE org = ? AND name = ?",
            (org, name),
        ).fetchone()
        history = [
            pb.Activation(
                sequence=seq,
                version=version,
                from_version=from_version,
                kind=kind,
                reason=reason,
                incident_id=incident,
                at=_timestamp(at),
            )
            for seq, version, from_version, kind, reason, incident, at in db.execute(
                "SELECT sequence, version, from_version, kind, reason, incident_id, at FROM activations"
                " WHERE org = ? AND script = ? ORDER BY sequence",
                (org, name),
            )
        ]
        rolled_back = [
            row[0]
            for row in db.execute(
                "SELECT version FROM rolled_back_from WHERE org = ? AND script = ? ORDER BY version",
                (org, name),
            )
        ]
        return pb.Script(
            name=name,
            active_version=active,
            latest_version=self._latest_version(db, org, name),
            has_draft=bool(has_draft),
            history=history,
            rolled_back_from=rolled_back,
        )

    def _version(
        self, db: sqlite3.Connection, org: str, name: str, version: int, script: pb.Script
    ) -> pb.Version:
        sha, input_schema, output_schema, created = db.execute(
            "SELECT source_sha256, input_schema_json, output_schema_json, created_at FROM versions"
            " WHERE org = ? AND script = ? AND version = ?",
            (org, name, version),
        ).fetchone()
        return pb.Version(
            script=name,
            version=version,
            source_sha256=sha,
            input_schema_json=input_schema,
            output_schema_json=output_schema,
            created_at=_timestamp(created),
            active=version == script.active_version,
            rolled_back_from=version in script.rolled_back_from,
        )

    def _thread(self, db: sqlite3.Connection, org: str, thread_id: str) -> pb.Thread:
        row = db.execute(
            "SELECT script, version, status, input_json, output_json, error, steps_json, env_resolved,"
            " env_keys_json, request_id, created_at, finished_at, duration_ms, timeout_seconds"
            " FROM threads WHERE org = ? AND thread_id = ?",
            (org, thread_id),
        ).fetchone()
        if row is None:
            raise not_found(f"thread {thread_id!r} not found")
        (
            script,
            version,
            status,
            input_json,
            output_json,
            error,
            steps_json,
            env_resolved,
            env_keys_json,
            request_id,
            created,
            finished,
            duration_ms,
            timeout_seconds,
        ) = row
        thread = pb.Thread(
            thread_id=thread_id,
            script=script,
            version=version,
            status=status,
            input_json=input_json,
            output_json=output_json,
            error=error,
            env_resolved=bool(env_resolved),
            env_keys=json.loads(env_keys_json),
            request_id=request_id,
            created_at=_timestamp(created),
            duration_ms=duration_ms,
            timeout_seconds=timeout_seconds,
            steps=[
                pb.Step(name=n, status=s, offset_ms=o, duration_ms=d, error=e)
                for n, s, o, d, e in json.loads(steps_json)
            ],
        )
        if finished is not None:
            thread.finished_at.CopyFrom(_timestamp(finished))
        return thread


def _env_entry(key: str, value: str, source: pb.EnvSource.ValueType, updated_at: int) -> pb.EnvEntry:
    return pb.EnvEntry(
        key=key, value_sha256=sha256_hex(value), source=source, updated_at=_timestamp(updated_at)
    )


def _cas_message(active: int, expected: int) -> str:
    return f"active version is {active}, not {expected}: someone else changed it"
