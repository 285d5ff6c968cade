"""Reading a seed directory (DESIGN.md section 5) into plain data, with errors naming the file.

    DIR/tenant.env                         KEY=VALUE lines (dotenv), the tenant env
    DIR/scripts/NAME/script.yaml           optional: {active: N, env: {KEY: VALUE}} (the overlay)
    DIR/scripts/NAME/vN/handler.py         version N's handler (versions 1..max, no gaps)
    DIR/scripts/NAME/vN/contract.scriptum  optional: version N's declarations -> its ScriptContract
    DIR/scripts/NAME/draft/...             optional unpublished draft (same files)

`info.yaml` (v1's JSON Schemas) is no longer read: a seed that still has one is an error that says
to write `contract.scriptum` instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._contract_lang import ContractSyntaxError, parse_contract
from ._program import CONTRACT_FILE, HANDLER_FILE, Program
from ._validation import ENV_KEY, SCRIPT_NAME

__all__ = ["Seed", "SeedError", "SeedScript", "SeedVersion", "load_seed", "parse_dotenv"]

_VERSION_DIR = re.compile(r"v([1-9][0-9]*)")


class SeedError(ValueError):
    """The seed directory is unusable; the message names the file and what is wrong."""


@dataclass(frozen=True)
class SeedVersion:
    """One `vN/` directory."""

    number: int
    program: Program


@dataclass(frozen=True)
class SeedScript:
    """One `scripts/NAME/` directory."""

    name: str
    versions: tuple[SeedVersion, ...]
    active: int  # 0 when the script has no version
    overlay: dict[str, str] = field(default_factory=dict)
    draft: Program | None = None


@dataclass(frozen=True)
class Seed:
    """A whole seed directory."""

    tenant_env: dict[str, str]
    scripts: tuple[SeedScript, ...]


def load_seed(root: Path) -> Seed:
    """Read and validate `root`; SeedError naming the offending file on any problem."""
    if not root.is_dir():
        raise SeedError(f"seed directory {root} does not exist or is not a directory")
    env_file = root / "tenant.env"
    tenant_env = _read_env_file(env_file) if env_file.exists() else {}
    scripts_dir = root / "scripts"
    scripts: list[SeedScript] = []
    if scripts_dir.exists():
        if not scripts_dir.is_dir():
            raise SeedError(f"{scripts_dir}: expected a directory of scripts")
        for script_dir in sorted(scripts_dir.iterdir()):
            if script_dir.is_dir():
                scripts.append(_read_script(script_dir))
            elif not script_dir.name.startswith("."):
                raise SeedError(f"{script_dir}: expected only script directories in {scripts_dir}")
    return Seed(tenant_env=tenant_env, scripts=tuple(scripts))


def _read_env_file(path: Path) -> dict[str, str]:
    return parse_dotenv(_read_text(path), str(path))


def parse_dotenv(text: str, source: str) -> dict[str, str]:
    """KEY=VALUE lines (blank lines and # comments ignored, `export ` allowed, one pair of
    matching quotes stripped); SeedError naming `source:line` on a bad line."""
    values: dict[str, str] = {}
    # Lines end at "\n" (and "\r\n") only: str.splitlines also splits at U+2028, \x1c, \x85, ...,
    # which would cut a value in two and store its tail as a key of its own.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r").strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            # The line itself is not quoted: it may hold a secret.
            raise SeedError(f"{source}:{number}: expected KEY=VALUE")
        if not ENV_KEY.fullmatch(key):
            raise SeedError(f"{source}:{number}: invalid env key {key[:80]!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def _read_script(script_dir: Path) -> SeedScript:
    name = script_dir.name
    if not SCRIPT_NAME.fullmatch(name):
        raise SeedError(
            f"{script_dir}: invalid script name {name!r} "
            "(lowercase letters, digits and '-', 1..64 characters)"
        )
    config_file = script_dir / "script.yaml"
    config = _read_yaml_mapping(config_file) if config_file.exists() else {}
    unknown = sorted(set(config) - {"active", "env"})
    if unknown:
        raise SeedError(
            f"{config_file}: unknown key(s) {', '.join(map(str, unknown))} (allowed: active, env)"
        )

    versions: list[SeedVersion] = []
    draft: Program | None = None
    for entry in sorted(script_dir.iterdir()):
        if not entry.is_dir() or entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.name == "draft":
            draft = _read_program(entry)
            continue
        match = _VERSION_DIR.fullmatch(entry.name)
        if match is None:
            raise SeedError(f"{entry}: a script directory holds only vN/ (N >= 1) and draft/ directories")
        versions.append(SeedVersion(int(match.group(1)), _read_program(entry)))
    versions.sort(key=lambda version: version.number)
    for expected, version in enumerate(versions, start=1):
        if version.number != expected:
            raise SeedError(
                f"{script_dir}: versions must be v1..vN without gaps, but v{expected} is missing "
                f"(found: {', '.join(f'v{v.number}' for v in versions)})"
            )

    active = _read_active(config_file, config, versions)
    overlay = _read_overlay(config_file, config.get("env"))
    return SeedScript(name=name, versions=tuple(versions), active=active, overlay=overlay, draft=draft)


def _read_program(directory: Path) -> Program:
    info_file = directory / "info.yaml"
    if info_file.exists():
        raise SeedError(
            f"{info_file}: info.yaml is no longer supported; declare the input and output in "
            f"{directory / CONTRACT_FILE} (the documented .scriptum declaration syntax)"
        )
    handler = directory / HANDLER_FILE
    if not handler.is_file():
        raise SeedError(f"{handler}: missing (every version and draft directory needs a handler.py)")
    source = _read_text(handler)
    try:
        compile(source, str(handler), "exec")
    except SyntaxError as exc:
        raise SeedError(f"{handler}:{exc.lineno}: syntax error: {exc.msg}") from None
    contract_file = directory / CONTRACT_FILE
    if not contract_file.exists():
        return Program(handler=source)
    text = _read_text(contract_file)
    try:
        contract = parse_contract(text, str(contract_file))
    except ContractSyntaxError as exc:
        raise SeedError(str(exc)) from None
    return Program(handler=source, contract_text=text, contract=contract)


def _read_active(config_file: Path, config: dict[str, Any], versions: list[SeedVersion]) -> int:
    numbers = [version.number for version in versions]
    if "active" not in config or config["active"] is None:
        return max(numbers, default=0)
    active = config["active"]
    if isinstance(active, bool) or not isinstance(active, int) or active < 1:
        raise SeedError(f"{config_file}: 'active' must be a version number >= 1, got {active!r}")
    if active not in numbers:
        raise SeedError(
            f"{config_file}: 'active: {active}' names no version directory "
            f"(found: {', '.join(f'v{n}' for n in numbers) or 'none'})"
        )
    return active


def _read_overlay(config_file: Path, env: Any) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise SeedError(f"{config_file}: 'env' must be a mapping of KEY: VALUE")
    overlay: dict[str, str] = {}
    for key, value in env.items():
        if not isinstance(key, str) or not ENV_KEY.fullmatch(key):
            raise SeedError(f"{config_file}: env: invalid env key {key!r}")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SeedError(f"{config_file}: env: {key} must be a string or a number (quote it)")
        overlay[key] = value if isinstance(value, str) else str(value)
    return overlay


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as exc:
        raise SeedError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SeedError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SeedError(f"{path}: cannot read: {exc}") from None
