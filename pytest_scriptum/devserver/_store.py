"""SQLite persistence of every organization's state (WAL, durable across kill -9).

One connection guarded by a lock: statements are short, and a single writer keeps every
check-and-write (compare-and-set, request-id reuse) trivially atomic. Transactions that check
and then write use BEGIN IMMEDIATE so no other writer can slip in between. A thread is written
twice on its way (accepted as PENDING; settled), never per step: live progress is held in memory
by `_threads`, and a restart turns every thread left PENDING/RUNNING into FAILED with
PLATFORM_RESTART. Times are ms since the epoch.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_scriptum._proto import scriptum_pb2 as pb

from ._drafts import compiled_draft
from ._errors import already_exists, invalid, not_found, precondition
from ._program import Program, sha256_hex
from ._seed import Seed
from ._steps import StepRecord, steps_from_json, steps_to_json

__all__ = ["DB_FILENAME", "FINAL_STATUSES", "NewThread", "Store", "ThreadRow", "now_ms"]

DB_FILENAME = "scriptum.sqlite3"
_SCHEMA_VERSION = "2"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenant_env (
    org TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (org, key));
CREATE TABLE IF NOT EXISTS scripts (
    org TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]', labels BLOB NOT NULL DEFAULT x'',
    active_version INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    draft BLOB, PRIMARY KEY (org, name));
CREATE TABLE IF NOT EXISTS overlay (
    org TEXT NOT NULL, script TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    updated_at INTEGER NOT NULL, PRIMARY KEY (org, script, key));
CREATE TABLE IF NOT EXISTS versions (
    org TEXT NOT NULL, script TEXT NOT NULL, version INTEGER NOT NULL, handler TEXT NOT NULL,
    contract_text TEXT NOT NULL, contract BLOB NOT NULL, sha256 TEXT NOT NULL, tools TEXT NOT NULL,
    created_at INTEGER NOT NULL, PRIMARY KEY (org, script, version));
CREATE TABLE IF NOT EXISTS activations (
    org TEXT NOT NULL, script TEXT NOT NULL, sequence INTEGER NOT NULL, version INTEGER NOT NULL,
    from_version INTEGER NOT NULL, kind INTEGER NOT NULL, reason TEXT NOT NULL,
    incident_id TEXT NOT NULL, rollback_id TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (org, script, sequence));
CREATE TABLE IF NOT EXISTS threads (
    thread_id TEXT PRIMARY KEY, org TEXT NOT NULL, script TEXT NOT NULL, version INTEGER NOT NULL,
    requested_version INTEGER NOT NULL, draft INTEGER NOT NULL, status INTEGER NOT NULL,
    error TEXT NOT NULL DEFAULT '', error_code TEXT NOT NULL DEFAULT '', input_json TEXT NOT NULL,
    output BLOB NOT NULL DEFAULT x'', steps TEXT NOT NULL DEFAULT '', yields TEXT NOT NULL DEFAULT '',
    env_keys TEXT NOT NULL DEFAULT '[]', load_env INTEGER NOT NULL, metadata TEXT NOT NULL,
    request_id TEXT NOT NULL, created_at INTEGER NOT NULL, started_at INTEGER NOT NULL DEFAULT 0,
    finished_at INTEGER NOT NULL DEFAULT 0, timeout_s REAL NOT NULL, pending_ask BLOB,
    answers TEXT NOT NULL DEFAULT '[]', draft_bundle TEXT,
    last_sequence INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS threads_request_id ON threads (org, request_id) WHERE request_id != '';
CREATE INDEX IF NOT EXISTS threads_by_time ON threads (org, created_at DESC, thread_id DESC);
CREATE INDEX IF NOT EXISTS threads_by_script ON threads (org, script, created_at DESC, thread_id DESC);
CREATE INDEX IF NOT EXISTS threads_by_status ON threads (status, org, created_at DESC, thread_id DESC);
"""
# The indexes are created on every open (IF NOT EXISTS): a data directory written by an older
# server gains them when it is opened, with no change of schema version (no column changed).

FINAL_STATUSES = frozenset({pb.THREAD_STATUS_COMPLETED, pb.THREAD_STATUS_FAILED, pb.THREAD_STATUS_CANCELLED})
SETTLED_STATUSES = FINAL_STATUSES | {pb.THREAD_STATUS_PAUSED}


def now_ms() -> int:
    """Now, ms since the epoch."""
    return time.time_ns() // 1_000_000


def _page(page_size: int, page_token: str) -> tuple[int, int]:
    """(limit, offset) of an offset-paged list; tokens are opaque to callers."""
    if page_size < 0:
        raise invalid(f"page_size must be >= 0, got {page_size}")
    limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if not page_token:
        return limit, 0
    try:
        offset = int(base64.urlsafe_b64decode(page_token.encode()).decode().removeprefix("o:"))
    except (ValueError, UnicodeDecodeError):
        raise invalid(f"page_token {page_token!r} is not a token this server issued") from None
    return limit, max(0, offset)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


@dataclass(frozen=True)
class NewThread:
    """What CreateThread / TestScriptDraft store before anything runs."""

    org: str
    script: str
    version: int  # resolved; 0 for a draft test
    requested_version: int
    draft: bool
    input_json: str
    load_env: bool
    metadata: Mapping[str, str]
    request_id: str
    timeout_s: float
    draft_program: Program | None = None


@dataclass
class ThreadRow:
    """A stored thread, everything a result or a resume needs."""

    thread: pb.Thread
    input_json: str
    output: bytes
    steps: list[StepRecord]
    yields: list[str]
    answers: list[Any]
    timeout_s: float
    last_sequence: int
    draft_bundle: str | None  # the program a draft test ran (None for a version's thread)


class Store:
    """All persistent state, keyed by organization."""

    def __init__(self, data_dir: Path, *, durable: bool = True) -> None:
        """Open (creating) the store in `data_dir`. `durable=False` is for a throwaway data
        directory: commits are not fsynced (a killed process still loses nothing, the OS has the
        pages; a lost machine loses the store, which nobody keeps anyway)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_FILENAME
        self.durable = durable
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed change survives not only a killed process but a lost machine.
        # OFF: no fsync per commit, which is most of a CreateThread's cost on a slow disk.
        self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(_SCHEMA)
        self._programs: dict[tuple[str, str, int], Program] = {}
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None and row[0] != _SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} holds state of schema {row[0]}, not {_SCHEMA_VERSION}: "
                    "use a new data directory"
                )
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
        now = now_ms()
        with self._tx() as db:
            if seed is not None:
                for key, value in seed.tenant_env.items():
                    db.execute(
                        "INSERT OR REPLACE INTO tenant_env VALUES (?, ?, ?, ?)", (org, key, value, now)
                    )
                for script in seed.scripts:
                    db.execute(
                        "INSERT INTO scripts (org, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
                        (org, script.name, now, now),
                    )
                    for key, value in script.overlay.items():
                        db.execute(
                            "INSERT INTO overlay VALUES (?, ?, ?, ?, ?)", (org, script.name, key, value, now)
                        )
                    for version in script.versions:
                        self._insert_version(db, org, script.name, version.number, version.program, (), now)
                        if version.number <= script.active:
                            self._record_activation(
                                db, org, script.name, version.number, pb.ACTIVATION_KIND_PUBLISH, now
                            )
                    if script.draft is not None:
                        draft = compiled_draft(script.name, script.draft.bundle, now)
                        db.execute(
                            "UPDATE scripts SET draft = ? WHERE org = ? AND name = ?",
                            (draft.SerializeToString(), org, script.name),
                        )
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('initialized', ?)", (str(now),))

    def fail_unfinished_threads(self) -> int:
        """Mark threads a previous process left PENDING/RUNNING as FAILED PLATFORM_RESTART."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE threads SET status = ?, error = ?, error_code = 'PLATFORM_RESTART', finished_at = ?"
                " WHERE status IN (?, ?)",
                (
                    pb.THREAD_STATUS_FAILED,
                    "the server restarted while the thread was unfinished (the platform's fault, not the"
                    " script's)",
                    now_ms(),
                    pb.THREAD_STATUS_PENDING,
                    pb.THREAD_STATUS_RUNNING,
                ),
            )
            return cursor.rowcount

    # ---- tenant env -------------------------------------------------------------------------

    def set_env_var(self, org: str, key: str, value: str) -> pb.EnvVar:
        now = now_ms()
        with self._tx() as db:
            self._upsert_env(db, "tenant_env", (org,), key, value, now)
        found = self.get_env_var(org, key)
        assert found is not None
        return found

    def get_env_var(self, org: str, key: str) -> pb.EnvVar | None:
        with self._read() as db:
            row = db.execute(
                "SELECT value, updated_at FROM tenant_env WHERE org = ? AND key = ?", (org, key)
            ).fetchone()
        return None if row is None else pb.EnvVar(key=key, value=row[0], updated_at_ms=row[1])

    def list_env_vars(self, org: str, page_size: int, page_token: str) -> pb.ListEnvVarsResponse:
        limit, offset = _page(page_size, page_token)
        with self._read() as db:
            rows = db.execute(
                "SELECT key, value, updated_at FROM tenant_env WHERE org = ? ORDER BY key LIMIT ? OFFSET ?",
                (org, limit + 1, offset),
            ).fetchall()
        more = len(rows) > limit
        return pb.ListEnvVarsResponse(
            vars=[pb.EnvVar(key=k, value=v, updated_at_ms=at) for k, v, at in rows[:limit]],
            next_page_token=_token(offset + limit) if more else "",
        )

    def delete_env_var(self, org: str, key: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM tenant_env WHERE org = ? AND key = ?", (org, key)).rowcount > 0

    def import_env_vars(self, org: str, values: Mapping[str, str]) -> list[str]:
        now = now_ms()
        with self._tx() as db:
            for key, value in values.items():
                self._upsert_env(db, "tenant_env", (org,), key, value, now)
        return sorted(values)

    # ---- script env -------------------------------------------------------------------------

    def script_env(self, org: str, name: str) -> pb.ScriptEnv:
        with self._read() as db:
            self._require_script(db, org, name)
            rows = db.execute(
                "SELECT key, value FROM overlay WHERE org = ? AND script = ? ORDER BY key", (org, name)
            ).fetchall()
        return pb.ScriptEnv(name=name, env=dict(rows))

    def update_script_env(
        self, org: str, name: str, set_values: Mapping[str, str], delete: Sequence[str]
    ) -> pb.ScriptEnv:
        now = now_ms()
        with self._tx() as db:
            self._require_script(db, org, name)
            for key in delete:
                db.execute("DELETE FROM overlay WHERE org = ? AND script = ? AND key = ?", (org, name, key))
            for key, value in set_values.items():
                self._upsert_env(db, "overlay", (org, name), key, value, now)
        return self.script_env(org, name)

    def effective_env(self, org: str, name: str) -> dict[str, str]:
        """Tenant env + overlay; an overlay key with an empty value defers to the tenant value
        ("empty-defers"), and is left out when the tenant has none."""
        with self._read() as db:
            env = dict(db.execute("SELECT key, value FROM tenant_env WHERE org = ?", (org,)).fetchall())
            for key, value in db.execute(
                "SELECT key, value FROM overlay WHERE org = ? AND script = ?", (org, name)
            ).fetchall():
                if value != "":
                    env[key] = value
        return env

    # ---- scripts ----------------------------------------------------------------------------

    def create_script(
        self,
        org: str,
        name: str,
        description: str,
        tags: Sequence[str],
        labels: Sequence[pb.Label],
        env: Mapping[str, str],
        draft: pb.DraftInfo | None,
    ) -> pb.Script:
        now = now_ms()
        with self._tx() as db:
            if db.execute("SELECT 1 FROM scripts WHERE org = ? AND name = ?", (org, name)).fetchone():
                raise already_exists(f"script {name!r} already exists")
            db.execute(
                "INSERT INTO scripts (org, name, description, tags, labels, created_at, updated_at, draft)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    org,
                    name,
                    description,
                    json.dumps(list(tags)),
                    pb.ListScriptsRequest(labels=labels).SerializeToString(),
                    now,
                    now,
                    None if draft is None else draft.SerializeToString(),
                ),
            )
            for key, value in env.items():
                db.execute("INSERT INTO overlay VALUES (?, ?, ?, ?, ?)", (org, name, key, value, now))
            return self._script(db, org, name)

    def list_scripts(
        self, org: str, tags: Sequence[str], labels: Sequence[pb.Label], page_size: int, page_token: str
    ) -> pb.ListScriptsResponse:
        limit, offset = _page(page_size, page_token)
        with self._read() as db:
            names = [
                row[0] for row in db.execute("SELECT name FROM scripts WHERE org = ? ORDER BY name", (org,))
            ]
            scripts = [self._script(db, org, name) for name in names]
        wanted_tags = set(tags)
        wanted_labels = {(label.key, value) for label in labels for value in label.values}

        def keep(script: pb.Script) -> bool:
            if not wanted_tags <= set(script.tags):
                return False
            if not wanted_labels:
                return True
            have = {(label.key, value) for label in script.labels for value in label.values}
            return bool(wanted_labels & have)

        matching = [script for script in scripts if keep(script)]
        page = matching[offset : offset + limit]
        more = offset + limit < len(matching)
        return pb.ListScriptsResponse(scripts=page, next_page_token=_token(offset + limit) if more else "")

    def get_script(self, org: str, name: str) -> pb.Script:
        with self._read() as db:
            self._require_script(db, org, name)
            return self._script(db, org, name)

    def delete_script(self, org: str, name: str) -> None:
        with self._tx() as db:
            self._require_script(db, org, name)
            for table, column in (("scripts", "name"), ("overlay", "script"), ("versions", "script")):
                db.execute(f"DELETE FROM {table} WHERE org = ? AND {column} = ?", (org, name))
            db.execute("DELETE FROM activations WHERE org = ? AND script = ?", (org, name))
            for key in [key for key in self._programs if key[:2] == (org, name)]:
                del self._programs[key]

    # ---- drafts -----------------------------------------------------------------------------

    def get_draft(self, org: str, name: str) -> pb.DraftInfo | None:
        with self._read() as db:
            self._require_script(db, org, name)
            row = db.execute("SELECT draft FROM scripts WHERE org = ? AND name = ?", (org, name)).fetchone()
        return None if row[0] is None else pb.DraftInfo.FromString(row[0])

    def put_draft(self, org: str, name: str, draft: pb.DraftInfo, *, expected_sha: str | None = None) -> None:
        """Store the draft; with `expected_sha`, only while the stored draft still has that source
        (a compile must not overwrite a draft saved meanwhile: FAILED_PRECONDITION)."""
        with self._tx() as db:
            self._require_script(db, org, name)
            if expected_sha is not None:
                row = db.execute(
                    "SELECT draft FROM scripts WHERE org = ? AND name = ?", (org, name)
                ).fetchone()
                current = None if row[0] is None else pb.DraftInfo.FromString(row[0])
                if current is None or current.content_sha256 != expected_sha:
                    raise precondition(f"the draft of {name!r} changed while it was compiled; compile again")
            db.execute(
                "UPDATE scripts SET draft = ?, updated_at = ? WHERE org = ? AND name = ?",
                (draft.SerializeToString(), now_ms(), org, name),
            )

    def publish(
        self, org: str, name: str, program: Program, tools: Sequence[str], draft_sha: str
    ) -> tuple[pb.ScriptVersion, int]:
        """Publish the (compiled) draft as the next version and activate it; clears the draft.

        Returns (the new version, the version active before). FAILED_PRECONDITION when the draft
        changed since it was compiled (`draft_sha`)."""
        now = now_ms()
        with self._tx() as db:
            previous = self._require_script(db, org, name)
            row = db.execute("SELECT draft FROM scripts WHERE org = ? AND name = ?", (org, name)).fetchone()
            current = None if row[0] is None else pb.DraftInfo.FromString(row[0])
            if current is None or current.content_sha256 != draft_sha:
                raise precondition(
                    f"the draft of {name!r} changed meanwhile; compile it again before publishing"
                )
            number = self._latest_version(db, org, name) + 1
            self._insert_version(db, org, name, number, program, tools, now)
            self._record_activation(db, org, name, number, pb.ACTIVATION_KIND_PUBLISH, now)
            db.execute(
                "UPDATE scripts SET draft = NULL, updated_at = ? WHERE org = ? AND name = ?", (now, org, name)
            )
            return self._version(db, org, name, number), previous

    # ---- versions ---------------------------------------------------------------------------

    def list_versions(
        self, org: str, name: str, page_size: int, page_token: str
    ) -> pb.ListScriptVersionsResponse:
        limit, offset = _page(page_size, page_token)
        with self._read() as db:
            self._require_script(db, org, name)
            rows = db.execute(
                "SELECT version FROM versions WHERE org = ? AND script = ? ORDER BY version LIMIT ? OFFSET ?",
                (org, name, limit + 1, offset),
            ).fetchall()
            versions = [self._version(db, org, name, row[0]) for row in rows[:limit]]
        more = len(rows) > limit
        return pb.ListScriptVersionsResponse(
            versions=versions, next_page_token=_token(offset + limit) if more else ""
        )

    def get_version(self, org: str, name: str, version: int) -> pb.ScriptVersion:
        with self._read() as db:
            self._require_script(db, org, name)
            self._require_version(db, org, name, version)
            return self._version(db, org, name, version)

    def active_version(self, org: str, name: str) -> int:
        with self._read() as db:
            return self._require_script(db, org, name)

    def program(self, org: str, name: str, version: int) -> Program:
        """A version's program (cached: versions are immutable); NOT_FOUND naming what is missing."""
        key = (org, name, version)
        cached = self._programs.get(key)
        if cached is not None:
            return cached
        with self._read() as db:
            self._require_script(db, org, name)
            self._require_version(db, org, name, version)
            handler, contract_text, contract = db.execute(
                "SELECT handler, contract_text, contract FROM versions"
                " WHERE org = ? AND script = ? AND version = ?",
                key,
            ).fetchone()
            program = Program(handler, contract_text, pb.ScriptContract.FromString(contract))
            self._programs[key] = program
        return program

    # ---- activation -------------------------------------------------------------------------

    def rollback(
        self,
        org: str,
        name: str,
        to_version: int,
        expected_active: int,
        reason: str,
        incident_id: str,
        rollback_id: str,
    ) -> tuple[pb.Script, int, bool]:
        """Re-point the active version. Returns (script, previous active, applied now).

        `to_version` 0 = the version active before the current one. A `rollback_id` already in
        the history is answered from it (applied=False): a retry after an ambiguous outcome."""
        with self._tx() as db:
            active = self._require_script(db, org, name)
            if rollback_id:
                row = db.execute(
                    "SELECT from_version FROM activations WHERE org = ? AND script = ? AND rollback_id = ?",
                    (org, name, rollback_id),
                ).fetchone()
                if row is not None:
                    return self._script(db, org, name), int(row[0]), False
            if expected_active > 0 and active != expected_active:
                raise precondition(_cas_message(active, expected_active))
            if to_version == 0:
                row = db.execute(
                    "SELECT from_version FROM activations WHERE org = ? AND script = ?"
                    " ORDER BY sequence DESC LIMIT 1",
                    (org, name),
                ).fetchone()
                to_version = int(row[0]) if row is not None else 0
                if to_version == 0:
                    raise precondition(f"script {name!r} has no previously active version to roll back to")
            self._require_version(db, org, name, to_version)
            if to_version == active:
                raise precondition(f"version {to_version} is already the active version of {name!r}")
            self._record_activation(
                db,
                org,
                name,
                to_version,
                pb.ACTIVATION_KIND_ROLLBACK,
                now_ms(),
                reason,
                incident_id,
                rollback_id,
            )
            return self._script(db, org, name), active, True

    # ---- threads ----------------------------------------------------------------------------

    def create_thread(self, new: NewThread) -> tuple[pb.Thread, bool]:
        """Insert a PENDING thread, or return the thread already holding `new.request_id`.

        Returns (thread, created). Reusing a request id with other arguments is FAILED_PRECONDITION.
        """
        now = now_ms()
        with self._tx() as db:
            if new.request_id:
                # `request_id != ''` repeats the partial index's WHERE: without it SQLite cannot
                # prove a bound parameter is not '' and walks every thread of the organization.
                row = db.execute(
                    "SELECT thread_id, script, requested_version, input_json, draft FROM threads"
                    " WHERE org = ? AND request_id = ? AND request_id != ''",
                    (new.org, new.request_id),
                ).fetchone()
                if row is not None:
                    thread_id, script, requested_version, input_json, draft = row
                    if (script, requested_version, input_json, bool(draft)) != (
                        new.script,
                        new.requested_version,
                        new.input_json,
                        new.draft,
                    ):
                        raise precondition(
                            f"request id {new.request_id!r} was already used for a thread of {script!r} "
                            f"version {requested_version} with other arguments; use a new request id"
                        )
                    return self._thread_row(db, new.org, thread_id).thread, False
            thread_id = f"thr_{uuid.uuid4().hex}"
            draft_program = new.draft_program
            db.execute(
                "INSERT INTO threads (thread_id, org, script, version, requested_version, draft, status,"
                " input_json, load_env, metadata, request_id, created_at, timeout_s, draft_bundle)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    thread_id,
                    new.org,
                    new.script,
                    new.version,
                    new.requested_version,
                    int(new.draft),
                    pb.THREAD_STATUS_PENDING,
                    new.input_json,
                    int(new.load_env),
                    json.dumps(dict(new.metadata)),
                    new.request_id,
                    now,
                    new.timeout_s,
                    # A draft changes: the thread keeps the program it ran (a resume replays it).
                    None if draft_program is None else draft_program.bundle,
                ),
            )
        thread = pb.Thread(
            thread_id=thread_id,
            status=pb.THREAD_STATUS_PENDING,
            created_at_ms=now,
            execution_mode=pb.EXECUTION_MODE_CLOUD,
            script_name=new.script,
            version=new.version,
            metadata=new.metadata,
            load_env=new.load_env,
            draft=new.draft,
        )
        return thread, True

    def settle_thread(
        self,
        thread: pb.Thread,
        *,
        output: bytes,
        steps: Sequence[StepRecord],
        yields: Sequence[str],
        answers: Sequence[Any],
        last_sequence: int,
    ) -> None:
        """Store a settled (terminal or PAUSED) thread: its status, error, output and records."""
        ask = thread.pending_ask.SerializeToString() if thread.HasField("pending_ask") else None
        with self._tx() as db:
            db.execute(
                "UPDATE threads SET status = ?, error = ?, error_code = ?, output = ?, steps = ?, yields = ?,"
                " env_keys = ?, started_at = ?, finished_at = ?, pending_ask = ?, answers = ?,"
                " last_sequence = ?"
                " WHERE thread_id = ?",
                (
                    thread.status,
                    thread.error,
                    thread.error_code,
                    output,
                    steps_to_json(steps),
                    json.dumps(list(yields)),
                    json.dumps(list(thread.env_keys)),
                    thread.started_at_ms,
                    thread.finished_at_ms,
                    ask,
                    json.dumps(list(answers)),
                    last_sequence,
                    thread.thread_id,
                ),
            )

    def resume_thread(self, org: str, thread_id: str, answers: Sequence[Any]) -> ThreadRow:
        """PAUSED -> PENDING with the answers so far (FAILED_PRECONDITION when not PAUSED)."""
        with self._tx() as db:
            row = self._thread_row(db, org, thread_id)
            if row.thread.status != pb.THREAD_STATUS_PAUSED:
                raise precondition(
                    f"thread {thread_id!r} is "
                    f"{pb.ThreadStatus.Name(row.thread.status).removeprefix('THREAD_STATUS_')}"
                    ", not PAUSED: nothing to resume"
                )
            db.execute(
                "UPDATE threads SET status = ?, pending_ask = NULL, answers = ?, finished_at = 0"
                " WHERE thread_id = ?",
                (pb.THREAD_STATUS_PENDING, json.dumps(list(answers)), thread_id),
            )
        row.thread.status = pb.THREAD_STATUS_PENDING
        row.thread.ClearField("pending_ask")
        row.thread.finished_at_ms = 0
        row.answers = list(answers)
        return row

    def cancel_settled(self, org: str, thread_id: str, error: str) -> pb.Thread:
        """CANCELLED for a PAUSED (or stored-but-not-running) thread; a final one is returned as is."""
        with self._tx() as db:
            row = self._thread_row(db, org, thread_id)
            if row.thread.status in FINAL_STATUSES:
                return row.thread
            now = now_ms()
            db.execute(
                "UPDATE threads SET status = ?, error = ?, error_code = 'CANCELLED_BY_CALLER',"
                " finished_at = ?,"
                " pending_ask = NULL WHERE thread_id = ?",
                (pb.THREAD_STATUS_CANCELLED, error, now, thread_id),
            )
            return self._thread_row(db, org, thread_id).thread

    def get_thread(self, org: str, thread_id: str) -> ThreadRow:
        with self._read() as db:
            return self._thread_row(db, org, thread_id)

    def list_threads(
        self, org: str, statuses: Sequence[int], script: str, limit: int, after: tuple[int, str] | None
    ) -> list[pb.Thread]:
        """Threads newest first (keyset paging: strictly after `after` = (created_at, thread_id))."""
        query = (
            "SELECT thread_id, status, error, error_code, script, version, draft, load_env, metadata,"
            " env_keys, created_at, started_at, finished_at, pending_ask, steps FROM threads WHERE org = ?"
        )
        args: list[Any] = [org]
        if statuses:
            query += f" AND status IN ({', '.join('?' * len(statuses))})"
            args += list(statuses)
        if script:
            query += " AND script = ?"
            args.append(script)
        if after is not None:
            query += " AND (created_at < ? OR (created_at = ? AND thread_id < ?))"
            args += [after[0], after[0], after[1]]
        query += " ORDER BY created_at DESC, thread_id DESC LIMIT ?"
        args.append(limit)
        with self._read() as db:
            rows = db.execute(query, args).fetchall()
        return [_thread_message(*row) for row in rows]

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

    def _insert_version(
        self,
        db: sqlite3.Connection,
        org: str,
        name: str,
        number: int,
        program: Program,
        tools: Sequence[str],
        now: int,
    ) -> None:
        db.execute(
            "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                org,
                name,
                number,
                program.handler,
                program.contract_text,
                program.contract.SerializeToString(),
                sha256_hex(program.bundle),
                json.dumps(list(tools)),
                now,
            ),
        )

    def _record_activation(
        self,
        db: sqlite3.Connection,
        org: str,
        name: str,
        version: int,
        kind: int,
        at: int,
        reason: str = "",
        incident_id: str = "",
        rollback_id: str = "",
    ) -> None:
        active, sequence = db.execute(
            "SELECT s.active_version, (SELECT COALESCE(MAX(sequence), 0) + 1 FROM activations"
            " WHERE org = s.org AND script = s.name) FROM scripts s WHERE s.org = ? AND s.name = ?",
            (org, name),
        ).fetchone()
        db.execute(
            "INSERT INTO activations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (org, name, sequence, version, active, kind, reason, incident_id, rollback_id, at),
        )
        db.execute(
            "UPDATE scripts SET active_version = ?, updated_at = ? WHERE org = ? AND name = ?",
            (version, at, org, name),
        )

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

    def _history(self, db: sqlite3.Connection, org: str, name: str) -> list[pb.Activation]:
        return [
            pb.Activation(
                sequence=seq,
                version=version,
                from_version=from_version,
                kind=kind,
                reason=reason,
                incident_id=incident,
                rollback_id=rollback_id,
                at_ms=at,
            )
            for seq, version, from_version, kind, reason, incident, rollback_id, at in db.execute(
                "SELECT sequence, version, from_version, kind, reason, incident_id, rollback_id, at"
                " FROM activations WHERE org = ? AND script = ? ORDER BY sequence",
                (org, name),
            )
        ]

    def _script(self, db: sqlite3.Connection, org: str, name: str) -> pb.Script:
        description, tags, labels, active, created, updated, draft = db.execute(
            "SELECT description, tags, labels, active_version, created_at, updated_at, draft FROM scripts"
            " WHERE org = ? AND name = ?",
            (org, name),
        ).fetchone()
        draft_status = (
            pb.DraftInfo.FromString(draft).status if draft is not None else pb.VERSION_STATUS_UNSPECIFIED
        )
        if active:
            status = pb.SCRIPT_STATUS_ACTIVE
        elif draft is not None:
            status = pb.SCRIPT_STATUS_DRAFT
        else:
            status = pb.SCRIPT_STATUS_CREATED
        script = pb.Script(
            name=name,
            description=description,
            tags=json.loads(tags),
            labels=pb.ListScriptsRequest.FromString(labels).labels,
            status=status,
            active_version=active,
            latest_version=self._latest_version(db, org, name),
            draft_status=draft_status,
            created_at_ms=created,
            updated_at_ms=updated,
            activation_history=self._history(db, org, name),
        )
        if active:
            row = db.execute(
                "SELECT contract FROM versions WHERE org = ? AND script = ? AND version = ?",
                (org, name, active),
            ).fetchone()
            script.contract.ParseFromString(row[0])
        return script

    def _version(self, db: sqlite3.Connection, org: str, name: str, version: int) -> pb.ScriptVersion:
        contract, sha, tools, created = db.execute(
            "SELECT contract, sha256, tools, created_at FROM versions"
            " WHERE org = ? AND script = ? AND version = ?",
            (org, name, version),
        ).fetchone()
        active = self._require_script(db, org, name)
        activated, rolled_back_from = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(kind = ? AND from_version = ?), 0) FROM activations"
            " WHERE org = ? AND script = ? AND (version = ? OR from_version = ?)",
            (pb.ACTIVATION_KIND_ROLLBACK, version, org, name, version, version),
        ).fetchone()
        if version == active:
            status = pb.VERSION_STATUS_ACTIVE
        elif activated:
            status = pb.VERSION_STATUS_SUPERSEDED
        else:
            status = pb.VERSION_STATUS_COMPILED
        return pb.ScriptVersion(
            name=name,
            version=version,
            status=status,
            contract=pb.ScriptContract.FromString(contract),
            tools_required=json.loads(tools),
            content_sha256=sha,
            created_at_ms=created,
            rolled_back_from=bool(rolled_back_from),
        )

    def _thread_row(self, db: sqlite3.Connection, org: str, thread_id: str) -> ThreadRow:
        row = db.execute(
            "SELECT thread_id, status, error, error_code, script, version, draft, load_env, metadata,"
            " env_keys, created_at, started_at, finished_at, pending_ask, steps, input_json, output, yields,"
            " answers, timeout_s, last_sequence, draft_bundle"
            " FROM threads WHERE org = ? AND thread_id = ?",
            (org, thread_id),
        ).fetchone()
        if row is None:
            raise not_found(f"thread {thread_id!r} not found")
        thread = _thread_message(*row[:15])
        return ThreadRow(
            thread=thread,
            input_json=row[15],
            output=bytes(row[16]),
            steps=steps_from_json(row[14]),
            yields=json.loads(row[17]) if row[17] else [],
            answers=json.loads(row[18]),
            timeout_s=float(row[19]),
            last_sequence=int(row[20]),
            draft_bundle=row[21],
        )


def _thread_message(
    thread_id: str,
    status: int,
    error: str,
    error_code: str,
    script: str,
    version: int,
    draft: int,
    load_env: int,
    metadata: str,
    env_keys: str,
    created: int,
    started: int,
    finished: int,
    pending_ask: bytes | None,
    steps_json: str,
) -> pb.Thread:
    steps = steps_from_json(steps_json)
    last = steps[-1] if steps else None
    thread = pb.Thread(
        thread_id=thread_id,
        status=status,  # type: ignore[arg-type]
        error=error,
        error_code=error_code,
        current_step_path=last.path if last else "",
        current_step_name=last.name if last else "",
        total_steps=len(steps),
        created_at_ms=created,
        started_at_ms=started,
        finished_at_ms=finished,
        execution_mode=pb.EXECUTION_MODE_CLOUD,
        script_name=script,
        version=version,
        metadata=json.loads(metadata),
        load_env=bool(load_env),
        env_keys=json.loads(env_keys),
        draft=bool(draft),
    )
    if pending_ask is not None:
        thread.pending_ask.ParseFromString(pending_ask)
    return thread


def _cas_message(active: int, expected: int) -> str:
    return f"active version is {active}, not {expected}: someone else changed it"
