"""A fake ScriptumClient for the pure logic of preflight and rollback (what they conclude from
given answers). Every behaviour over real sockets is tested through the plugin against the dev server;
here the answers are ones a real server cannot easily be made to give (a server whose field
numbers differ, an ambiguous rollback outcome, a platform without an activation history).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

from pytest_scriptum.client import ScriptumClient, ScriptumError
from pytest_scriptum.client._records import (
    Activation,
    ApiInfo,
    EnvVar,
    RollbackResult,
    Script,
    ScriptEnv,
    ScriptVersion,
)

ALL_EXTENSIONS = frozenset(
    {
        "RollbackScriptRequest.expected_active_version",
        "RollbackScriptRequest.reason",
        "RollbackScriptRequest.incident_id",
        "RollbackScriptRequest.rollback_id",
        "Script.activation_history",
        "ScriptVersion.rolled_back_from",
        "Thread.error_code",
        "Thread.env_keys",
    }
)


def history(*entries: tuple[int, int, str]) -> tuple[Activation, ...]:
    """(version, from_version, kind) -> activation history entries."""
    return tuple(
        Activation(sequence=n, version=v, from_version=f, kind=k)
        for n, (v, f, k) in enumerate(entries, start=1)
    )


@dataclass
class FakePlatform:
    """One script's state, and overrides of single answers (``answers[method]``: a callable
    returning the answer, or an exception to raise). ``calls`` logs every call in order."""

    name: str = "calc"
    versions: dict[int, str] = field(
        default_factory=lambda: {
            1: "SUPERSEDED",
            2: "SUPERSEDED",
            3: "SUPERSEDED",
            4: "ACTIVE",
            5: "COMPILED",
        }
    )
    active: int = 4
    activations: tuple[Activation, ...] | None = field(
        default_factory=lambda: history(
            (1, 0, "PUBLISH"), (2, 1, "PUBLISH"), (3, 2, "PUBLISH"), (4, 3, "PUBLISH")
        )
    )
    contracts: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    tenant_env: dict[str, str] = field(default_factory=lambda: {"DB_HOST": "db.secret.invalid"})
    overlay: dict[str, str] = field(default_factory=lambda: {"MODEL": "gpt-secret-4.1"})
    api: ApiInfo = field(default_factory=lambda: ApiInfo("reflection", ALL_EXTENSIONS))
    answers: dict[str, Callable[..., Any] | Exception] = field(default_factory=dict)
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    transport = "grpc"

    @property
    def client(self) -> ScriptumClient:
        return cast(ScriptumClient, self)

    def called(self, method: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(args, kwargs) for name, args, kwargs in self.calls if name == method]

    def _answer(self, method: str, default: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.calls.append((method, args, kwargs))
        override = self.answers.get(method)
        if isinstance(override, Exception):
            raise override
        return (override or default)(*args, **kwargs)

    def _script(self) -> Script:
        return Script(self.name, self.active, max(self.versions), "ACTIVE", history=self.activations)

    # -- the ScriptumClient methods preflight and rollback use ------------------------------
    def api_info(self) -> ApiInfo:
        return cast(ApiInfo, self._answer("api_info", lambda: self.api))

    def list_scripts(self) -> list[Script]:
        return cast("list[Script]", self._answer("list_scripts", lambda: [self._script()]))

    def get_script(self, name: str) -> Script:
        def answer(name: str) -> Script:
            if name != self.name:
                raise ScriptumError("NOT_FOUND", f"script {name!r} not found", "GetScript")
            return self._script()

        return cast(Script, self._answer("get_script", answer, name))

    def _version(self, name: str, version: int) -> ScriptVersion:
        if name != self.name or version not in self.versions:
            raise ScriptumError("NOT_FOUND", f"{name} v{version} not found", "GetScriptVersion")
        rolled = version in self._script().rolled_back_from if self.activations is not None else None
        return ScriptVersion(
            name, version, self.versions[version], self.contracts.get(version, {}), rolled_back_from=rolled
        )

    def get_script_version(self, name: str, version: int) -> ScriptVersion:
        return cast(ScriptVersion, self._answer("get_script_version", self._version, name, version))

    def list_script_versions(self, name: str) -> list[ScriptVersion]:
        return cast(
            "list[ScriptVersion]",
            self._answer(
                "list_script_versions",
                lambda name: [self._version(name, v) for v in sorted(self.versions)],
                name,
            ),
        )

    def list_env_vars(self) -> list[EnvVar]:
        return cast(
            "list[EnvVar]",
            self._answer("list_env_vars", lambda: [EnvVar(k, v) for k, v in sorted(self.tenant_env.items())]),
        )

    def get_script_env(self, name: str) -> ScriptEnv:
        return cast(
            ScriptEnv, self._answer("get_script_env", lambda name: ScriptEnv(name, dict(self.overlay)), name)
        )

    def rollback_script(self, name: str, to_version: int, **extensions: Any) -> RollbackResult:
        def apply(name: str, to_version: int, **extensions: Any) -> RollbackResult:
            expected = extensions.get("expected_active_version", 0)
            if (
                self.api.has("RollbackScriptRequest.expected_active_version")
                and expected
                and expected != self.active
            ):
                raise ScriptumError(
                    "FAILED_PRECONDITION", f"active version is {self.active}", "RollbackScript"
                )
            return self.apply_rollback(to_version, **extensions)

        return cast(RollbackResult, self._answer("rollback_script", apply, name, to_version, **extensions))

    def apply_rollback(self, to_version: int, **extensions: Any) -> RollbackResult:
        """Make the rollback happen (also from an override that then fails the call)."""
        before = self.active
        self.active = to_version
        if self.activations is not None:
            entry = Activation(
                len(self.activations) + 1,
                to_version,
                before,
                "ROLLBACK",
                reason=extensions.get("reason", ""),
                incident_id=extensions.get("incident_id", ""),
                rollback_id=extensions.get("rollback_id", ""),
            )
            self.activations = (*self.activations, entry)
        return RollbackResult(self._script(), before, to_version)


def bundled(platform: FakePlatform) -> FakePlatform:
    """The platform as seen through the bundled descriptors (no reflection)."""
    platform.api = replace(platform.api, descriptors="bundled")
    return platform
