"""The promotion checklist, checked before any smoke test runs, and the rollback target choice.

Runbook promotion checklist as the plugin performs it (DESIGN section 3 "Preflight"):
  0. the platform speaks the API the plugin uses (every method and field exists by name; with
     bundled descriptors, probe calls whose answers must echo what was sent)
  1. tenant env has the critical keys  (``--scriptum-require-env`` and the candidate contract's
                                        required ``env`` keys are in the effective env)
  2. script overlay recorded           (keys and fingerprints of the values, never the values)
  3. candidate version exists          (and is published: ACTIVE, SUPERSEDED or COMPILED)
     or, for ``--scriptum-version=draft`` / ``--scriptum-publish`` (DESIGN section 8):
     compiled draft exists                (GetDraftInfo: status COMPILED; its sha is recorded)
  5. rollback target verified          (exists, differs from the candidate, never rolled back from)
Item 4, the pinned smoke gate, is the test run itself.

Env reads return values on the platform (``ListEnvVars``, ``GetScriptEnv``). The values live only
in the locals of ``run_preflight``: the result holds keys and ``fingerprint``s, never a value; the
session's redactor is shown each mapping read (``on_env``) so it can mask the secret ones wherever a
script echoes them back (DESIGN section 4 "Secrets").
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pytest_scriptum.client import ScriptumClient, ScriptumError

if TYPE_CHECKING:
    from pytest_scriptum.client._records import ApiInfo, DraftInfo, Script, ScriptVersion

__all__ = [
    "CHECKLIST",
    "FINGERPRINT_KEY_ENV",
    "PUBLISHED",
    "ApiUse",
    "Preflight",
    "PreflightItem",
    "choose_target",
    "contract_env_keys",
    "fingerprint",
    "fingerprint_key",
    "run_preflight",
]

CHECKLIST = {
    "api": "0. platform speaks the API the plugin uses",
    "env": "1. tenant env has the critical keys",
    "overlay": "2. script overlay recorded",
    "candidate": "3. candidate version exists",
    "draft": "3. compiled draft exists",
    "target": "5. rollback target verified",
}

# Version statuses of a published version (docs: /scriptum/concepts): the active one, one that was
# active, one published and never activated.
PUBLISHED = frozenset({"ACTIVE", "SUPERSEDED", "COMPILED"})

_WIRE_HINT = "the server's field numbers differ from the bundled descriptors; enable server reflection"


# Set it (16+ characters, a secret itself) to get fingerprints comparable across the sessions that
# share it; without it every session draws its own key, which is written nowhere.
FINGERPRINT_KEY_ENV = "SCRIPTUM_FINGERPRINT_KEY"
_MIN_KEY_CHARS = 16


def fingerprint_key(environ: Mapping[str, str] | None = None) -> tuple[bytes, str]:
    """(HMAC key, where it came from): ``SCRIPTUM_FINGERPRINT_KEY``'s UTF-8 bytes when set, else 32
    random bytes drawn for this session ("session"). ValueError for a key under 16 characters."""
    env = os.environ if environ is None else environ
    configured = env.get(FINGERPRINT_KEY_ENV)
    if configured:
        if len(configured) < _MIN_KEY_CHARS:
            raise ValueError(f"{FINGERPRINT_KEY_ENV} is shorter than {_MIN_KEY_CHARS} characters")
        return configured.encode("utf-8"), FINGERPRINT_KEY_ENV
    return secrets.token_bytes(32), "session"


def fingerprint(value: str, key: bytes) -> str:
    """The fingerprint of an env value recorded in the evidence: hex HMAC-SHA256 of its UTF-8 bytes
    under ``key`` (DESIGN section 4: keyed, so a low-entropy value such as ``MODEL=m1`` cannot be
    found by hashing candidate values; the key is not in the evidence)."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ApiUse:
    """How this session speaks to the server: ``descriptors`` "reflection" or "bundled", and the
    EXTENSION fields (``"Message.field"``) the server offers, of those the client's one table of
    what the plugin uses names (``pytest_scriptum.client._contract``)."""

    descriptors: str
    extensions_used: tuple[str, ...] = ()

    @classmethod
    def of(cls, info: ApiInfo) -> ApiUse:
        # Imported here: the client's table of what the plugin uses loads protobuf (DESIGN section 6).
        from pytest_scriptum.client import EXTENSIONS

        return cls(info.descriptors, tuple(sorted(info.extensions & EXTENSIONS)))

    def as_dict(self) -> dict[str, Any]:
        """The bundle's ``api`` object."""
        return {"descriptors": self.descriptors, "extensions_used": list(self.extensions_used)}


@dataclass(frozen=True)
class PreflightItem:
    """One checklist item: its ``name`` (the runbook's wording, e.g. "3. candidate version exists"),
    whether it is ``ok``, and the ``detail`` of what was found or why it failed."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Preflight:
    """The checklist's result; ``failure`` names the first failed item.

    ``overlay`` maps overlay keys to ``fingerprint``s; ``effective_keys`` are the keys of the
    effective env (tenant keys, plus overlay keys with a non-empty value).
    """

    items: tuple[PreflightItem, ...]
    active_version: int | None = None
    target: int | None = None
    target_source: Literal["explicit", "history", "none"] = "none"
    rolled_back_from: tuple[int, ...] = ()
    overlay: dict[str, str] = field(default_factory=dict)
    effective_keys: tuple[str, ...] = ()
    api: ApiUse | None = None
    fingerprint_key: str = "session"
    draft_sha: str | None = None  # the compiled draft's content sha256 (a draft candidate, or one to publish)

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
        """The bundle's ``preflight`` object (fingerprints and keys only, never values)."""
        return {
            "ok": self.ok,
            "failure": self.failure,
            "items": [{"name": i.name, "ok": i.ok, "detail": i.detail} for i in self.items],
            "active_version": self.active_version,
            "rollback_target": self.target,
            "rollback_target_source": self.target_source,
            "rolled_back_from": list(self.rolled_back_from),
            "overlay_sha256": dict(sorted(self.overlay.items())),
            "fingerprints": {"algorithm": "hmac-sha256", "key": self.fingerprint_key},
            "effective_env_keys": list(self.effective_keys),
            # Only with a draft candidate or a publish (DESIGN section 8).
            **({"draft_sha": self.draft_sha} if self.draft_sha is not None else {}),
        }


def choose_target(script: Script, candidate: int) -> int | None:
    """The version active before the candidate was activated, skipping versions rolled back from.

    Never "candidate - 1": it walks the activation history (EXTENSION; oldest first) backwards
    from the candidate's last activation. A candidate that was never activated falls back to the
    version active now. None without a history or without a known-good version.
    """
    if script.history is None:
        return None
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


def contract_env_keys(contract: Mapping[str, Any]) -> tuple[str, ...]:
    """The env keys a version's contract requires: its ``env`` fields without a default
    (``required``), each as the variable it reads (``KEY from "VAR"`` reads VAR)."""
    keys = []
    for entry in contract.get("env", ()) or ():
        if isinstance(entry, Mapping) and entry.get("required"):
            key = entry.get("env_from") or entry.get("envFrom") or entry.get("name")
            if key:
                keys.append(str(key))
    return tuple(dict.fromkeys(keys))


class _Stop(Exception):
    """An item failed in a way that makes the later items meaningless."""


def _platform_problem(exc: ScriptumError) -> str:
    if exc.is_auth:
        kind = "authentication failed" if exc.code == "UNAUTHENTICATED" else "authorization failed"
        return f"{kind}: {exc}"
    return f"platform error: {exc}"


class _Checklist:
    """One preflight run: the items found so far and what later items need."""

    def __init__(
        self,
        client: ScriptumClient,
        script: str,
        candidate: int | None,
        on_env: Callable[[Mapping[str, str]], None] | None = None,
    ) -> None:
        self.client = client
        self.script = script
        self.candidate = candidate
        self.on_env = on_env
        self.items: list[PreflightItem] = []
        self.bundled = False
        self.api_use: ApiUse | None = None  # known once api_info answered, even when it has problems

    def add(self, key: str, ok: bool, detail: str) -> None:
        self.items.append(PreflightItem(CHECKLIST[key], ok, detail))

    def stop(self, key: str, detail: str) -> _Stop:
        self.add(key, False, detail)
        return _Stop(detail)

    def wire_mismatch(self, detail: str) -> _Stop:
        return self.stop("api", f"wire mismatch: {detail} — {_WIRE_HINT}")

    # -- 0. the API ---------------------------------------------------------------------------
    def api(self) -> None:
        info = self.client.api_info()
        self.api_use = ApiUse.of(info)
        if info.problems:
            raise self.stop("api", "the server lacks what the plugin uses: " + "; ".join(info.problems))
        self.bundled = info.descriptors == "bundled"
        how = "descriptors from server reflection" if not self.bundled else "bundled descriptors"
        self.add("api", True, f"every method and field the plugin uses exists ({how})")

    def _listed_scripts(self) -> set[str] | None:
        try:
            return {s.name for s in self.client.list_scripts()}
        except ScriptumError:
            return None  # no evidence either way

    def _listed_versions(self) -> set[int] | None:
        try:
            return {v.version for v in self.client.list_script_versions(self.script)}
        except ScriptumError:
            return None

    # -- 3. the candidate ---------------------------------------------------------------------
    def script_info(self) -> Script:
        """GetScript; with bundled descriptors its answer must echo the name sent."""
        name = self.script
        try:
            info = self.client.get_script(name)
        except ScriptumError as exc:
            # The name is well formed (options check it): a refusal, or a NOT_FOUND for a script
            # ListScripts shows (or for one without a name), means the server did not read our name.
            if self.bundled and exc.code == "INVALID_ARGUMENT":
                raise self.wire_mismatch(f"GetScript refused the well-formed name {name!r} ({exc})") from None
            if exc.code != "NOT_FOUND":
                raise
            listed = self._listed_scripts() if self.bundled else None
            if listed is not None and (name in listed or "" in listed):
                raise self.wire_mismatch(
                    f"GetScript answered NOT_FOUND for {name!r}, but ListScripts lists "
                    f"{'it' if name in listed else 'a script without a name'}"
                ) from None
            raise self.stop("candidate", f"script {name!r} not found") from None
        if self.bundled and info.name != name:
            raise self.wire_mismatch(f"GetScript answered name {info.name!r} for {name!r}")
        return info

    def candidate_version(self, info: Script) -> ScriptVersion:
        """GetScriptVersion of the candidate: it exists, is published, and (bundled) echoes."""
        name, candidate = self.script, self.candidate
        assert candidate is not None  # a numbered candidate; the draft's is compiled_draft
        try:
            version = self.client.get_script_version(name, candidate)
        except ScriptumError as exc:
            if self.bundled and exc.code == "INVALID_ARGUMENT":
                raise self.wire_mismatch(
                    f"GetScriptVersion refused {name!r} v{candidate} ({exc})"
                ) from None
            if exc.code != "NOT_FOUND":
                raise
            listed = self._listed_versions() if self.bundled else None
            if listed is not None and candidate in listed:
                raise self.wire_mismatch(
                    f"GetScriptVersion answered NOT_FOUND for {name!r} v{candidate}, but "
                    "ListScriptVersions lists it"
                ) from None
            raise self.stop(
                "candidate", f"{name} v{candidate} not found (latest published is v{info.latest_version})"
            ) from None
        if self.bundled and (version.name != name or version.version != candidate):
            raise self.wire_mismatch(
                f"GetScriptVersion answered {version.name!r} v{version.version} for {name!r} v{candidate}"
            )
        if version.status not in PUBLISHED:
            raise self.stop(
                "candidate",
                f"{name} v{candidate} is not published (status {version.status or 'unknown'}; "
                f"published versions are {', '.join(sorted(PUBLISHED))})",
            )
        self.add(
            "candidate",
            True,
            f"{name} v{candidate} exists, {version.status} (active: v{info.active_version})",
        )
        return version

    def compiled_draft(self) -> DraftInfo:
        """GetDraftInfo: the script has a draft and it is COMPILED (TestScriptDraft and
        PublishScriptDraft run the compiled draft; docs: /scriptum/concepts, version status)."""
        name = self.script
        draft = self.client.get_draft_info(name)
        if not draft.exists:
            raise self.stop(
                "draft", f"{name} has no draft (save one: dodil scriptum draft save {name} -f FILE)"
            )
        if draft.status != "COMPILED":
            problems = "; ".join(
                f"{d.file}:{d.line}:{d.column}: {d.message}" for d in draft.diagnostics[:3]
            )
            raise self.stop(
                "draft",
                f"the draft of {name} is {draft.status or 'in an unknown state'}, not COMPILED"
                + (f" ({problems})" if problems else "")
                + f": compile it (dodil scriptum draft compile {name})",
            )
        sha = draft.content_sha256[:12] or "?"
        self.add("draft", True, f"the draft of {name} is COMPILED (sha256 {sha})")
        return draft

    def active_target(self, info: Script, rolled: set[int]) -> int | None:
        """``--scriptum-publish``: the rollback target is exactly the version active before the
        publish (DESIGN section 8), which must exist and never have been rolled back from."""
        active = info.active_version
        if not active:
            self.add(
                "target", True,
                f"no active version of {self.script} before publishing (a failed gate ends as no_target)",
            )
            return None
        if active in rolled:
            raise self.stop(
                "target",
                f"v{active}, active before publishing, was rolled back from before: pass "
                "--scriptum-rollback-to=N (a known-good version)",
            )
        self.add("target", True, f"v{active} (active before publishing; exists, never rolled back from)")
        return active

    # -- 5. the rollback target ---------------------------------------------------------------
    def explicit_target(self, target: int, rolled: set[int]) -> bool:
        """Check ``--scriptum-rollback-to``; False (item failed) when it is unusable."""
        flag = f"--scriptum-rollback-to={target}"
        problem = None
        if target == self.candidate:
            problem = f"{flag} is the candidate itself"
        else:
            try:
                version = self.client.get_script_version(self.script, target)
            except ScriptumError as exc:
                if exc.code != "NOT_FOUND":
                    raise
                problem = f"{flag}: {self.script} v{target} not found"
            else:
                if target in rolled or version.rolled_back_from:
                    problem = f"{flag}: v{target} was rolled back from before; pick a known-good version"
        self.add(
            "target",
            problem is None,
            problem or f"v{target} (explicit) exists and was never rolled back from",
        )
        return problem is None

    def history_target(self, info: Script) -> int | None:
        assert self.candidate is not None  # a draft's target is active_target
        if info.history is None:
            raise self.stop(
                "target",
                "the platform offers no activation history to find the version active before "
                f"v{self.candidate}: pass --scriptum-rollback-to=N (a known-good version)",
            )
        target = choose_target(info, self.candidate)
        if target is not None:
            detail = f"v{target} (active before v{self.candidate}; exists, never rolled back from)"
        else:
            detail = "no known-good version in the activation history (a failed gate ends as no_target)"
        self.add("target", True, detail)
        return target

    # -- 1., 2. env ---------------------------------------------------------------------------
    def env(
        self, required: Sequence[str], declared: Sequence[str], key: bytes
    ) -> tuple[dict[str, str], tuple[str, ...]]:
        """(overlay key -> fingerprint, effective keys). ``required``: ``--scriptum-require-env``;
        ``declared``: the candidate contract's required env keys. Values never leave this method,
        except to ``on_env`` (the session's redactor)."""
        tenant = self.client.list_env_vars()
        tenant_keys = {var.key for var in tenant}
        values = self.client.get_script_env(self.script).env
        if self.on_env is not None:
            self.on_env({var.key: var.value for var in tenant})
            self.on_env(values)
        del tenant
        overlay = {name: fingerprint(value, key) for name, value in values.items()}
        # "empty-defers": an empty overlay value is not a value; the tenant's (if any) applies.
        effective = tuple(sorted(tenant_keys | {name for name, value in values.items() if value}))
        del values
        self.add("overlay", True, f"{len(overlay)} overlay keys recorded as HMAC-SHA256 fingerprints")
        wanted = tuple(dict.fromkeys([*required, *declared]))
        missing = [key for key in wanted if key not in effective]
        if missing:
            from_contract = [key for key in missing if key not in required]
            why = (
                f" ({', '.join(from_contract)} required by the env block of {self.script} "
                f"{'draft' if self.candidate is None else f'v{self.candidate}'}'s contract)"
                if from_contract
                else ""
            )
            self.add(
                "env", False, f"missing from the effective env of {self.script}: {', '.join(missing)}{why}"
            )
        elif wanted:
            self.add("env", True, f"present: {', '.join(wanted)}")
        else:
            self.add("env", True, "no keys required (--scriptum-require-env, contract env block)")
        return overlay, effective


def run_preflight(
    client: ScriptumClient,
    *,
    script: str,
    candidate: int | None,
    explicit_target: int | None,
    require_env: Sequence[str],
    check_target: bool = True,
    on_env: Callable[[Mapping[str, str]], None] | None = None,
    environ: Mapping[str, str] | None = None,
    publish: bool = False,
    key: tuple[bytes, str] | None = None,
) -> Preflight:
    """Run the checklist against the platform; nothing here changes the platform.

    ``require_env`` joins the required env keys of the candidate's contract. ``check_target``
    is False on the verification re-run (the target is the version under test there).
    ``on_env`` is called with each env mapping read (tenant env, script overlay): the session
    keeps the secret values for its redactor. Overlay fingerprints are keyed by
    ``fingerprint_key(environ)`` (``os.environ`` when None).

    ``candidate`` None: the candidate is the script's draft (``--scriptum-version=draft``, DESIGN
    section 8): item 3 checks that a compiled draft exists, and its contract's env keys are
    required. Without ``publish`` nothing is published, so there is no rollback target (item 5 says
    so); with ``publish`` the target is the version active now, before the publish. ``key``: the
    (HMAC key, source) pair the session already drew (``fingerprint_key``), so every fingerprint
    of the session is comparable; drawn here when None.
    """
    checks = _Checklist(client, script, candidate, on_env)
    active: int | None = None
    try:
        checks.api()
        info = checks.script_info()
        active = info.active_version
        draft: DraftInfo | None = None
        if candidate is None:
            draft = checks.compiled_draft()
            contract = draft.contract
        else:
            contract = checks.candidate_version(info).contract
        rolled = set(info.rolled_back_from)
        target: int | None = None
        source: Literal["explicit", "history", "none"] = "none"
        if check_target and candidate is None and explicit_target is None:
            if publish:
                target = checks.active_target(info, rolled)
                source = "history" if target is not None else "none"
            else:
                checks.add("target", True, "not needed: the draft is tested, never published or activated")
        elif check_target:
            if explicit_target is not None:
                source = "explicit"
                target = explicit_target
                checks.explicit_target(explicit_target, rolled)
            else:
                target = checks.history_target(info)
                source = "history" if target is not None else "none"
        try:
            secret, key_source = key if key is not None else fingerprint_key(environ)
        except ValueError as exc:
            raise checks.stop("overlay", str(exc)) from None
        overlay, effective = checks.env(require_env, contract_env_keys(contract), secret)
        del secret
        return Preflight(
            tuple(checks.items),
            active_version=active,
            target=target,
            target_source=source,
            rolled_back_from=tuple(sorted(rolled)),
            overlay=overlay,
            effective_keys=effective,
            api=checks.api_use,
            fingerprint_key=key_source,
            draft_sha=draft.content_sha256 if draft is not None else None,
        )
    except _Stop:
        return Preflight(tuple(checks.items), active_version=active, api=checks.api_use)
    except ScriptumError as exc:
        checks.items.append(
            PreflightItem("platform reachable and credentials accepted", False, _platform_problem(exc))
        )
        return Preflight(tuple(checks.items), active_version=active, api=checks.api_use)
