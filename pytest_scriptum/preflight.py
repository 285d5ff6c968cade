"""The promotion checklist, checked before any smoke test runs, and the rollback target choice.

Runbook promotion checklist as the plugin performs it:
  1. tenant env has the critical keys  (``--scriptum-require-env`` present in the effective env)
  2. script overlay recorded           (keys and value hashes; values are never read)
  3. candidate version exists
  5. rollback target verified          (exists, differs from the candidate, never rolled back from)
Item 4, the pinned smoke gate, is the test run itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_scriptum._proto import scriptum_pb2 as pb
from pytest_scriptum.client import ScriptumClient, ScriptumError

__all__ = ["CHECKLIST", "Preflight", "PreflightItem", "choose_target", "run_preflight"]

CHECKLIST = {
    "env": "1. tenant env has the critical keys",
    "overlay": "2. script overlay recorded",
    "candidate": "3. candidate version exists",
    "target": "5. rollback target verified",
}


@dataclass(frozen=True)
class PreflightItem:
    """One checklist item and what was found."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Preflight:
    """The checklist's result; ``failure`` names the first failed item."""

    items: tuple[PreflightItem, ...]
    active_version: int | None = None
    target: int | None = None
    target_source: Literal["explicit", "history", "none"] = "none"
    rolled_back_from: tuple[int, ...] = ()
    overlay: dict[str, str] = field(default_factory=dict)
    effective_keys: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every item passed."""
        return all(i.ok for i in self.items)

    @property
    def failure(self) -> str | None:
        """'<item>: <detail>' of the first failed item, or None."""
        for item in self.items:
            if not item.ok:
                return f"{item.name}: {item.detail}"
        return None

    def as_dict(self) -> dict[str, Any]:
        """The bundle's ``preflight`` object (hashes and keys only, never values)."""
        return {
            "ok": self.ok,
            "failure": self.failure,
            "items": [{"name": i.name, "ok": i.ok, "detail": i.detail} for i in self.items],
            "active_version": self.active_version,
            "rollback_target": self.target,
            "rollback_target_source": self.target_source,
            "rolled_back_from": list(self.rolled_back_from),
            "overlay_sha256": dict(sorted(self.overlay.items())),
            "effective_env_keys": list(self.effective_keys),
        }


def choose_target(script: pb.Script, candidate: int) -> int | None:
    """The version active before the candidate was activated, skipping versions rolled back from.

    Never "candidate - 1": it walks the activation history backwards from the candidate's last
    activation. A candidate that was never activated falls back to the version active now.
    """
    rolled = set(script.rolled_back_from)
    history = list(script.history)
    last = max((i for i, entry in enumerate(history) if entry.version == candidate), default=None)
    if last is None:
        earlier = [script.active_version] if script.active_version else []
    else:
        earlier = [entry.version for entry in reversed(history[:last])]
    for version in earlier:
        if version > 0 and version != candidate and version not in rolled:
            return version
    return None


def _platform_problem(exc: ScriptumError) -> str:
    if exc.is_auth:
        kind = "authentication failed" if exc.code == "UNAUTHENTICATED" else "authorization failed"
        return f"{kind}: {exc}"
    return f"platform error: {exc}"


def run_preflight(
    client: ScriptumClient,
    *,
    script: str,
    candidate: int,
    explicit_target: int | None,
    require_env: Sequence[str],
    check_target: bool = True,
) -> Preflight:
    """Run the checklist against the platform; nothing here changes the platform."""
    items: list[PreflightItem] = []
    try:
        try:
            info = client.get_script(script)
        except ScriptumError as exc:
            if exc.code == "NOT_FOUND":
                items.append(PreflightItem(CHECKLIST["candidate"], False, f"script {script!r} not found"))
                return Preflight(tuple(items))
            raise
        versions = client.list_versions(script)
        known = {v.version for v in versions.versions}
        if candidate not in known:
            latest = max(known, default=0)
            items.append(
                PreflightItem(
                    CHECKLIST["candidate"],
                    False,
                    f"{script} v{candidate} not found (latest published is v{latest})",
                )
            )
            return Preflight(tuple(items), active_version=info.active_version)
        items.append(
            PreflightItem(
                CHECKLIST["candidate"], True, f"{script} v{candidate} exists (active: v{info.active_version})"
            )
        )

        rolled = tuple(sorted(info.rolled_back_from))
        target: int | None = None
        source: Literal["explicit", "history", "none"] = "none"
        if check_target:
            if explicit_target is not None:
                source = "explicit"
                target = explicit_target
                problem = None
                if explicit_target == candidate:
                    problem = f"--scriptum-rollback-to={explicit_target} is the candidate itself"
                elif explicit_target not in known:
                    problem = (
                        f"--scriptum-rollback-to={explicit_target}: {script} v{explicit_target} not found"
                    )
                elif explicit_target in rolled:
                    problem = (
                        f"--scriptum-rollback-to={explicit_target}: v{explicit_target} was rolled back "
                        "from before; pick a known-good version"
                    )
                items.append(
                    PreflightItem(
                        CHECKLIST["target"],
                        problem is None,
                        problem or f"v{explicit_target} (explicit) exists and was never rolled back from",
                    )
                )
            else:
                target = choose_target(info, candidate)
                if target is not None:
                    source = "history"
                    detail = f"v{target} (active before v{candidate}; exists, never rolled back from)"
                else:
                    detail = (
                        "no known-good version in the activation history (a failed gate ends as no_target)"
                    )
                items.append(PreflightItem(CHECKLIST["target"], True, detail))

        env = client.get_script_env(script)
        overlay = {e.key: e.value_sha256 for e in env.overlay}
        effective = tuple(sorted(e.key for e in env.effective))
        items.append(
            PreflightItem(
                CHECKLIST["overlay"], True, f"{len(overlay)} overlay keys recorded as SHA-256 fingerprints"
            )
        )
        missing = [k for k in require_env if k not in effective]
        if missing:
            items.append(
                PreflightItem(
                    CHECKLIST["env"],
                    False,
                    f"missing from the effective env of {script}: {', '.join(missing)}",
                )
            )
        else:
            detail = (
                f"present: {', '.join(require_env)}"
                if require_env
                else "no keys required (--scriptum-require-env)"
            )
            items.append(PreflightItem(CHECKLIST["env"], True, detail))
        return Preflight(
            tuple(items),
            active_version=info.active_version,
            target=target,
            target_source=source,
            rolled_back_from=rolled,
            overlay=overlay,
            effective_keys=effective,
        )
    except ScriptumError as exc:
        items.append(
            PreflightItem("platform reachable and credentials accepted", False, _platform_problem(exc))
        )
        return Preflight(tuple(items))
