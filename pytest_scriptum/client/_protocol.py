"""ScriptumClient: the one interface the plugin codes against, whatever the transport."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pytest_scriptum._proto import scriptum_pb2 as pb

__all__ = ["ScriptumClient"]


class ScriptumClient(Protocol):
    """An authenticated, thread-safe client of one Scriptum organization.

    Every method raises ScriptumError for a platform error (after the retries it is allowed) and
    ValueError for a bad argument; never a transport's own exception.
    """

    transport: str

    def list_scripts(self) -> list[pb.Script]: ...

    def get_script(self, name: str) -> pb.Script: ...

    def list_versions(self, name: str) -> pb.ListVersionsResponse: ...

    def get_version(self, name: str, version: int) -> pb.Version: ...

    def import_tenant_env(self, values: Mapping[str, str], *, replace: bool = False) -> list[pb.EnvEntry]: ...

    def get_tenant_env(self, key: str) -> pb.EnvEntry: ...

    def list_tenant_env(self) -> list[pb.EnvEntry]: ...

    def get_script_env(self, name: str) -> pb.ScriptEnv: ...

    def update_script_env(self, name: str, set: Mapping[str, str] = ...,
                          delete: Sequence[str] = ()) -> pb.ScriptEnv: ...

    def create_draft(self, name: str, source: str, *, input_schema: Mapping[str, Any] | None = None,
                     output_schema: Mapping[str, Any] | None = None) -> pb.Draft: ...

    def publish_draft(self, name: str) -> pb.Version: ...

    def activate_version(self, name: str, version: int, *, expected_active_version: int = 0,
                         reason: str = "") -> pb.Script: ...

    def rollback_version(self, name: str, to_version: int, *, expected_active_version: int,
                         reason: str, incident_id: str = "") -> pb.Script: ...

    def run_thread(self, name: str, version: int, input: Any, *, resolve_env: bool = True,
                   request_id: str | None = None, timeout_s: float = 60.0,
                   cancel: threading.Event | None = None) -> pb.Thread: ...

    def get_thread(self, thread_id: str) -> pb.Thread: ...

    def cancel_thread(self, thread_id: str) -> pb.Thread: ...

    def close(self) -> None: ...
