"""ScriptumClient: the one interface the plugin codes against, whatever the transport.

Method names follow the documented RPCs (docs.dodil.io/scriptum/api-reference) in snake case.
Every method returns the plugin's own records (``_records``), never a transport message.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ._records import (
    ApiInfo,
    DraftInfo,
    EnvVar,
    Health,
    PublishResult,
    RollbackResult,
    RunRecord,
    Script,
    ScriptEnv,
    ScriptVersion,
    Template,
    Thread,
    ThreadOutput,
    Tool,
)

__all__ = ["ScriptumClient"]


class ScriptumClient(Protocol):
    """An authenticated, thread-safe client of one Scriptum organization.

    Every method raises ScriptumError for a platform error (after the retries it is allowed) and
    ValueError for a bad argument; never a transport's own exception.
    """

    transport: str

    def api_info(self) -> ApiInfo:
        """Descriptors in use ("reflection" or "bundled"), the EXTENSION fields the server shows,
        and every method/field the plugin needs that the server lacks (resolved once, cached)."""
        ...

    def health(self) -> Health: ...

    # -- scripts, drafts, versions --
    def create_script(self, name: str, *, description: str = "",
                      env: Mapping[str, str] = ...) -> Script:
        """CreateScript: metadata (and an initial env overlay) only; ALREADY_EXISTS if taken."""
        ...

    def delete_script(self, name: str) -> None:
        """DeleteScript: the script with every version, draft and overlay."""
        ...

    def list_scripts(self) -> list[Script]: ...

    def get_script(self, name: str) -> Script: ...

    def list_script_versions(self, name: str) -> list[ScriptVersion]: ...

    def get_script_version(self, name: str, version: int) -> ScriptVersion: ...

    def get_draft_info(self, name: str) -> DraftInfo: ...

    def save_script_draft(self, name: str, *, dsl_content: str = "", ir_yaml: str = "") -> DraftInfo: ...

    def compile_script_draft(self, name: str) -> DraftInfo: ...

    def publish_script_draft(self, name: str) -> PublishResult: ...

    def rollback_script(self, name: str, to_version: int, *, expected_active_version: int = 0,
                        reason: str = "", incident_id: str = "", rollback_id: str = "") -> RollbackResult:
        """RollbackScript. The EXTENSION arguments are sent only when the server's descriptors
        have them (see ``api_info().extensions``); FAILED_PRECONDITION is a CAS conflict."""
        ...

    # -- threads --
    def create_thread(self, name: str, version: int, input: Any, *, load_env: bool = True,
                      timeout_s: float = 60.0, request_id: str | None = None,
                      metadata: Mapping[str, str] | None = None) -> str:
        """CreateThread pinned to ``version`` (>= 1); returns the thread id at once."""
        ...

    def test_script_draft(self, name: str, input: Any, *, load_env: bool = True, timeout_s: float = 60.0,
                          request_id: str | None = None) -> str:
        """TestScriptDraft; returns the thread id."""
        ...

    def watch_thread(self, thread_id: str, *, timeout_s: float,
                     cancel: threading.Event | None = None) -> Thread:
        """Follow a thread until it is terminal or PAUSED: WatchThread, or GetThread polling when
        the stream is refused (as the platform CLI does). A set ``cancel`` cancels the thread and
        raises ScriptumError CANCELLED."""
        ...

    def get_thread(self, thread_id: str) -> Thread: ...

    def get_thread_result(self, thread_id: str) -> ThreadOutput:
        """GetThreadResult, then StreamThreadResult when the output was truncated."""
        ...

    def run_thread(self, name: str, version: int, input: Any, *, load_env: bool = True,
                   request_id: str | None = None, timeout_s: float = 60.0,
                   cancel: threading.Event | None = None, draft: bool = False) -> RunRecord:
        """Create (or, with ``draft``, TestScriptDraft), watch until settled, read the result.

        A FAILED, PAUSED or CANCELLED thread is returned, not raised. The request id goes in
        ``metadata["scriptum.request_id"]``; retries of CreateThread reuse it."""
        ...

    def list_threads(self, *, script_name: str = "", status: str = "") -> list[Thread]: ...

    def cancel_thread(self, thread_id: str) -> Thread: ...

    def resume_thread(self, thread_id: str, value: Any) -> Thread:
        """ResumeThread with ``step_input_override_json`` = JSON of ``value``."""
        ...

    # -- env, tools, templates --
    def list_env_vars(self) -> list[EnvVar]: ...

    def get_env_var(self, key: str) -> EnvVar: ...

    def set_env_var(self, key: str, value: str) -> EnvVar: ...

    def delete_env_var(self, key: str) -> bool: ...

    def import_env_vars(self, values: Mapping[str, str]) -> list[str]: ...

    def get_script_env(self, name: str) -> ScriptEnv: ...

    def update_script_env(self, name: str, set: Mapping[str, str] = ...,
                          delete: Sequence[str] = ()) -> ScriptEnv: ...

    def list_tools(self) -> list[Tool]: ...

    def list_templates(self) -> list[Template]: ...

    def get_template(self, template_id: str) -> Template: ...

    def close(self) -> None: ...
