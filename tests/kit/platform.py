"""``Platform``: a running dev server, driven and read by the outer test over its real gRPC port with
the generated stubs of the documented API (GetScript, ListScriptVersions, GetThread, CreateThread,
RollbackScript, ...) and the dev server's own ScriptumDevAdmin (counters, fault injection).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from kit.constants import auth
from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum._proto import scriptum_pb2_grpc as pb_grpc

if TYPE_CHECKING:  # only annotations: importing the kit must not need the dev server
    from pytest_scriptum.devserver import DevServer

__all__ = ["Platform"]


class Platform:
    """A running dev server, driven and read by the outer test over its real gRPC port.

    Build it from addresses (``Platform(grpc, http, token=..., org=...)``) when someone else owns
    the server, or with ``Platform.of(server, ...)`` to own a started DevServer: ``close()`` then
    stops it too. ``script`` and ``version`` are defaults of ``args()`` and of the script readers;
    ``session_args`` are appended to every inner session's args (before the call's own).
    """

    def __init__(
        self,
        grpc_target: str,
        http_url: str,
        *,
        token: str,
        org: str,
        script: str | None = None,
        version: int | None = None,
        session_args: tuple[str, ...] = (),
        server: DevServer | None = None,
    ) -> None:
        self.grpc = grpc_target
        self.http = http_url
        self.org = org
        self.script_name = script
        self.version = version
        self.session_args = session_args
        self.server = server
        self.channel = grpc.insecure_channel(grpc_target)
        self.stub = pb_grpc.ScriptumServiceStub(self.channel)
        self.admin = pb_grpc.ScriptumDevAdminStub(self.channel)
        self.metadata = auth(token, org)

    @classmethod
    def of(cls, server: DevServer, **options: Any) -> Platform:
        """The platform of a started ``server``, which ``close()`` stops."""
        return cls(server.addresses.grpc, server.addresses.http, server=server, **options)

    def args(self, *extra: str, version: int | None = None) -> list[str]:
        """CLI args that point an inner pytest session at this server (pinning ``version``, if any)."""
        version = self.version if version is None else version
        return [
            f"--scriptum-endpoint={self.grpc}",
            f"--scriptum-http-url={self.http}",
            f"--scriptum-org={self.org}",
            *([f"--scriptum-script={self.script_name}"] if self.script_name is not None else []),
            *([f"--scriptum-version={version}"] if version is not None else []),
            "-p",
            "no:cacheprovider",
            *self.session_args,
            *extra,
        ]

    # -- reads (the documented API, over the generated stubs) ----------------------------------

    def _name(self, name: str | None) -> str:
        name = self.script_name if name is None else name
        assert name is not None, "no script name given and this platform has no default script"
        return name

    def script(self, name: str | None = None) -> pb.Script:
        """GetScript."""
        return self.stub.GetScript(
            pb.GetScriptRequest(name=self._name(name)), metadata=self.metadata, timeout=10
        )

    def active(self, name: str | None = None) -> int:
        return self.script(name).active_version

    def history(self, name: str | None = None) -> list[pb.Activation]:
        """The script's activation history (EXTENSION), oldest first."""
        return list(self.script(name).activation_history)

    def rollbacks_in_history(self, name: str | None = None) -> list[pb.Activation]:
        return [entry for entry in self.history(name) if entry.kind == pb.ACTIVATION_KIND_ROLLBACK]

    def versions(self, name: str | None = None) -> list[pb.ScriptVersion]:
        """ListScriptVersions, ascending."""
        return list(
            self.stub.ListScriptVersions(
                pb.ListScriptVersionsRequest(name=self._name(name)), metadata=self.metadata, timeout=10
            ).versions
        )

    def threads(self, name: str | None = None) -> list[pb.Thread]:
        """ListThreads of a script, every page, newest first."""
        threads: list[pb.Thread] = []
        token = ""
        while True:
            request = pb.ListThreadsRequest(
                script_name_filter=self._name(name), page_size=100, page_token=token
            )
            page = self.stub.ListThreads(request, metadata=self.metadata, timeout=10)
            threads.extend(page.threads)
            token = page.next_page_token
            if not token:
                return threads

    def thread(self, thread_id: str) -> pb.Thread:
        """GetThread."""
        return self.stub.GetThread(
            pb.GetThreadRequest(thread_id=thread_id), metadata=self.metadata, timeout=10
        )

    def result(self, thread_id: str, **fields: Any) -> pb.GetThreadResultResponse:
        """GetThreadResult (``fields``: step_path, output_only, metadata_only)."""
        return self.stub.GetThreadResult(
            pb.GetThreadResultRequest(thread_id=thread_id, **fields), metadata=self.metadata, timeout=10
        )

    # -- writes --------------------------------------------------------------------------------

    def rollback(
        self, to_version: int, name: str | None = None, **extensions: Any
    ) -> pb.RollbackScriptResponse:
        """RollbackScript to ``to_version`` (an operator's rollback); ``extensions`` are the
        request's EXTENSION fields (expected_active_version, reason, incident_id, rollback_id)."""
        return self.stub.RollbackScript(
            pb.RollbackScriptRequest(name=self._name(name), to_version=to_version, **extensions),
            metadata=self.metadata,
            timeout=10,
        )

    def create_thread(
        self, input: Any, *, version: int | None = None, name: str | None = None, **fields: Any
    ) -> str:
        """CreateThread pinned to ``version`` (default: this platform's) with ``input`` as JSON;
        returns the thread id at once (the thread runs asynchronously)."""
        version = self.version if version is None else version
        assert version is not None, "no version given and this platform has no default version"
        return self.stub.CreateThread(
            pb.CreateThreadRequest(
                script_name=self._name(name), version=version, input_json=json.dumps(input), **fields
            ),
            metadata=self.metadata,
            timeout=10,
        ).thread_id

    def run(
        self,
        name: str | None,
        version: int | None,
        input: Any,
        *,
        load_env: bool = True,
        timeout: str = "60s",
        watch_timeout_s: float = 120.0,
    ) -> tuple[pb.Thread, pb.GetThreadResultResponse]:
        """A whole run, as a client of the documented API does it: CreateThread pinned to
        ``version``, WatchThread until the stream ends (the thread is terminal or PAUSED), then
        GetThreadResult. Returns the last thread the stream reported and the result."""
        thread_id = self.create_thread(input, version=version, name=name, load_env=load_env, timeout=timeout)
        last: pb.Thread | None = None
        for event in self.stub.WatchThread(
            pb.WatchThreadRequest(thread_id=thread_id), metadata=self.metadata, timeout=watch_timeout_s
        ):
            last = event.thread
        assert last is not None, f"WatchThread of {thread_id} ended without an event"
        return last, self.result(thread_id)

    # -- the dev server's admin API: counters and fault injection -------------------------------

    def stats(self) -> pb.Stats:
        return self.admin.GetStats(pb.GetStatsRequest(), metadata=self.metadata, timeout=10)

    def calls(self, method: str) -> int:
        return self.stats().calls.get(method, 0)

    def settled_stats(self, limit_s: float = 30.0) -> pb.Stats:
        """The counters once no run is in flight (a cancelled run is finished server-side asynchronously).

        After ``limit_s`` (far longer than any test should take) the counters are returned as they
        are, for the test's own assertions to fail on.
        """
        return self._poll(lambda stats: stats.runs_in_flight == 0, limit_s)[0]

    def wait_for(self, predicate: Callable[[pb.Stats], bool], what: str, timeout_s: float = 30.0) -> pb.Stats:
        """Wait until the server's counters satisfy ``predicate`` (a condition, not a fixed sleep)."""
        stats, reached = self._poll(predicate, timeout_s)
        if not reached:
            raise AssertionError(f"server never reached: {what}; last stats: {stats}")
        return stats

    def _poll(self, predicate: Callable[[pb.Stats], bool], timeout_s: float) -> tuple[pb.Stats, bool]:
        """Read the counters every 20 ms until ``predicate`` holds or ``timeout_s`` has passed."""
        deadline = time.monotonic() + timeout_s
        ticker = threading.Event()
        while True:
            stats = self.stats()
            if predicate(stats):
                return stats, True
            if time.monotonic() > deadline:
                return stats, False
            ticker.wait(0.02)

    def set_faults(self, **fields: Any) -> pb.Faults:
        """SetFaults with ``fields`` passed straight to ``pb.Faults``; the faults now in force."""
        faults: pb.Faults = self.admin.SetFaults(pb.Faults(**fields), metadata=self.metadata, timeout=10)
        return faults

    def reset(self) -> None:
        """Faults off, counters zeroed."""
        self.set_faults()
        self.admin.ResetStats(pb.ResetStatsRequest(), metadata=self.metadata, timeout=10)

    def close(self) -> None:
        """Close the channel, and stop the server if this platform owns it."""
        self.channel.close()
        if self.server is not None:
            self.server.stop()
