"""ScriptumClient: the one interface the plugin codes against, whatever the transport.

Method names follow the documented RPCs (docs.dodil.io/scriptum/api-reference) in snake case.
Every method returns the plugin's own records (``_records``, ``r.`` below), never a transport message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ._errors import ScriptumError

if TYPE_CHECKING:
    from . import _records as r

__all__ = ["ScriptumClient"]


class ScriptumClient(Protocol):
    """An authenticated, thread-safe client of one Scriptum organization.

    Every method raises ScriptumError for a platform error (after the retries it is allowed) and
    ValueError for a bad argument; never a transport's own exception.
    """

    transport: str

    def api_info(self) -> r.ApiInfo:
        """Descriptors in use ("reflection" or "bundled"), the EXTENSION fields the server shows,
        and every method/field the plugin needs that the server lacks (resolved once, cached)."""
        ...

    def health(self) -> r.Health: ...

    # -- scripts, drafts, versions --
    def create_script(self, name: str, *, description: str = "",
                      env: Mapping[str, str] = ...) -> r.Script:
        """CreateScript: metadata (and an initial env overlay) only; ALREADY_EXISTS if taken."""
        ...

    def delete_script(self, name: str) -> None:
        """DeleteScript: the script with every version, draft and overlay."""
        ...

    def list_scripts(self) -> list[r.Script]: ...

    def get_script(self, name: str) -> r.Script: ...

    def list_script_versions(self, name: str) -> list[r.ScriptVersion]: ...

    def get_script_version(self, name: str, version: int) -> r.ScriptVersion: ...

    def get_draft_info(self, name: str) -> r.DraftInfo: ...

    def save_script_draft(self, name: str, *, dsl_content: str = "", ir_yaml: str = "") -> r.DraftInfo: ...

    def compile_script_draft(self, name: str) -> r.DraftInfo: ...

    def publish_script_draft(self, name: str) -> r.PublishResult: ...

    def rollback_script(self, name: str, to_version: int, *, expected_active_version: int = 0,
                        reason: str = "", incident_id: str = "", rollback_id: str = "") -> r.RollbackResult:
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
                     cancel: threading.Event | None = None) -> r.Thread:
        """Follow a thread until it is terminal or PAUSED: WatchThread, or GetThread polling when
        the stream is refused (as the platform CLI does). A set ``cancel`` cancels the thread and
        raises ScriptumError CANCELLED."""
        ...

    def get_thread(self, thread_id: str) -> r.Thread: ...

    def get_thread_result(self, thread_id: str) -> r.ThreadOutput:
        """GetThreadResult, then StreamThreadResult when the output was truncated."""
        ...

    def run_thread(self, name: str, version: int, input: Any, *, load_env: bool = True,
                   request_id: str | None = None, timeout_s: float = 60.0,
                   cancel: threading.Event | None = None, draft: bool = False,
                   on_pushback: Callable[[ScriptumError], object] | None = None,
                   on_created: Callable[[str], object] | None = None,
                   on_retry: Callable[[], object] | None = None) -> r.RunRecord:
        """Create (or, with ``draft``, TestScriptDraft), watch until settled, read the result.

        A FAILED, PAUSED or CANCELLED thread is returned, not raised. The request id goes in
        ``metadata["scriptum.request_id"]``; retries of CreateThread reuse it and honour the
        platform's retry hint. ``on_pushback`` is called with every answer by which the platform
        pushed back on the create call (RESOURCE_EXHAUSTED, UNAVAILABLE, a retry hint), retried or
        not: the caller's in-flight limit backs off on it (DESIGN section 6). ``on_retry`` is called
        before each retry of the create call, once its wait is over (the caller may block in it to
        take back room in its in-flight limit). ``on_created`` is called with the thread id once
        the platform accepted the create call."""
        ...

    def list_threads(self, *, script_name: str = "", status: str = "") -> list[r.Thread]: ...

    def cancel_thread(self, thread_id: str) -> r.Thread: ...

    def resume_thread(self, thread_id: str, value: Any) -> r.Thread:
        """ResumeThread with ``step_input_override_json`` = JSON of ``value``."""
        ...

    # -- env, tools, templates --
    def list_env_vars(self) -> list[r.EnvVar]: ...

    def get_env_var(self, key: str) -> r.EnvVar: ...

    def set_env_var(self, key: str, value: str) -> r.EnvVar: ...

    def delete_env_var(self, key: str) -> bool: ...

    def import_env_vars(self, values: Mapping[str, str]) -> list[str]: ...

    def get_script_env(self, name: str) -> r.ScriptEnv: ...

    def update_script_env(self, name: str, set: Mapping[str, str] = ...,
                          delete: Sequence[str] = ()) -> r.ScriptEnv: ...

    def list_tools(self) -> list[r.Tool]: ...

    def list_templates(self) -> list[r.Template]: ...

    def get_template(self, template_id: str) -> r.Template: ...

    def close(self) -> None: ...
