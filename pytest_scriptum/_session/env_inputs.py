"""The two env inputs of the runbook in one command (DESIGN section 8), read and checked before the
session contacts the platform: ``--scriptum-env-file`` (the tenant env to import, dotenv) and
``--scriptum-overlay`` (the script overlay change, the runbook's ``UpdateScriptEnv`` body).

A mistake is an ``EnvInputError`` naming the file (and for the env file, the line), never the
value: the values are secrets until proven otherwise (DESIGN section 4). The values live in the
returned objects only, whose ``repr`` shows keys, never values (pytest ``--showlocals`` prints
reprs).

Dotenv rules (the platform CLI's ``env import`` documents only "overwrite, blank lines and ``#``
comments ignored"; the rest is our choice, written in the README "Choices"):
- ``KEY=VALUE`` per line; a later line for the same key overwrites an earlier one;
- blank lines and lines whose first non-blank character is ``#`` are ignored; no inline comments
  (``A=b #c`` sets ``b #c``: a ``#`` may be part of a secret);
- an optional leading ``export `` is accepted (files shared with a shell);
- whitespace around the key and around an unquoted value is removed;
- a value wholly inside one pair of matching ``'`` or ``"`` quotes loses them, nothing else:
  no escapes, no variable expansion, no multi-line values;
- keys are env keys (``[A-Za-z_][A-Za-z0-9_]*``, at most 128 characters); a value holds no control
  character; the file is UTF-8 (a byte order mark is dropped) and at most 1 MiB; lines end at
  ``\n`` or ``\r\n`` only (any other line separator inside a value is a control character).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pytest_scriptum._limits import ENV_KEY

__all__ = ["MAX_INPUT_BYTES", "EnvInputError", "OverlayChange", "TenantEnv", "read_env_file", "read_overlay"]

MAX_INPUT_BYTES = 1024 * 1024
"""Either file's size limit: a tenant env or an overlay change is a few kilobytes."""
_MAX_VALUE_CHARS = 64 * 1024


class EnvInputError(ValueError):
    """An env file or overlay file that cannot be used; the message names the file (and line) and
    the rule, never a value."""


@dataclass(frozen=True)
class TenantEnv:
    """The env file's keys and values, in file order (``values`` is read-only; repr: keys only)."""

    path: Path
    values: Mapping[str, str] = field(repr=False)

    def __repr__(self) -> str:
        return f"TenantEnv({str(self.path)!r}, keys={sorted(self.values)!r})"


@dataclass(frozen=True)
class OverlayChange:
    """The overlay change: keys to ``set`` (with their values) and keys to ``delete``."""

    path: Path
    set: Mapping[str, str] = field(repr=False)
    delete: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"OverlayChange({str(self.path)!r}, set={sorted(self.set)!r}, delete={list(self.delete)!r})"


def _read_text(path: Path, what: str) -> str:
    try:
        # At most one byte over the limit: a huge file (or /dev/zero) is never read whole.
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise EnvInputError(f"{what} {path}: cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise EnvInputError(f"{what} {path}: larger than {MAX_INPUT_BYTES} bytes")
    try:
        # utf-8-sig: a byte order mark (editors on Windows write one) is not part of the first key.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EnvInputError(f"{what} {path}: not UTF-8 (byte {exc.start})") from None


def _shown_key(key: object) -> str:
    """A bad key as an error shows it: a short printable string, else only its type (a YAML
    alias bomb's str() never ends, and a non-string key may hold a value)."""
    if isinstance(key, str) and key.isprintable() and len(key) <= 40:
        return repr(key)
    if key is None or isinstance(key, bool):  # YAML 1.1 reads yes/no/on/off/null keys so
        return f"{key!r} (quote the key in YAML)"
    return f"(a {type(key).__name__}, not shown)"


def _value_problem(value: str) -> str | None:
    if len(value) > _MAX_VALUE_CHARS:
        return f"the value is longer than {_MAX_VALUE_CHARS} characters"
    if any(not ch.isprintable() and ch != "\t" for ch in value):
        return "the value holds a control character"
    return None


def read_env_file(path: Path) -> TenantEnv:
    """Parse a dotenv file by the rules above; EnvInputError naming ``path:line`` for a bad line."""
    text = _read_text(path, "env file")
    values: dict[str, str] = {}
    # Lines end at "\n" (and "\r\n") only: str.splitlines also splits at U+2028, \x1c, \x85, ...,
    # which would cut a value in two and import its tail as a key of its own.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r").strip()
        if not line or line.startswith("#"):
            continue
        where = f"env file {path}:{number}"
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise EnvInputError(f"{where}: expected KEY=VALUE (no '=' on the line)")
        if not ENV_KEY.fullmatch(key):
            shown = key if key.isprintable() and len(key) <= 40 else "(not shown)"
            raise EnvInputError(f"{where}: {shown!r} is not an env key ([A-Za-z_][A-Za-z0-9_]*, at most 128)")
        if value[:1] in ("'", '"'):
            quote = value[0]
            if len(value) < 2 or not value.endswith(quote):
                raise EnvInputError(f"{where}: the value of {key} opens a {quote} quote it never closes")
            value = value[1:-1]
            if quote in value:
                raise EnvInputError(f"{where}: the value of {key} holds its own quote character ({quote})")
        problem = _value_problem(value)
        if problem is not None:
            raise EnvInputError(f"{where}: {key}: {problem}")
        values[key] = value
    if not values:
        raise EnvInputError(f"env file {path}: no KEY=VALUE line")
    return TenantEnv(path, MappingProxyType(values))


def read_overlay(path: Path) -> OverlayChange:
    """Parse an overlay change: JSON when the file ends in ``.json``, else YAML (``yaml.safe_load``);
    a mapping with ``set`` (env key -> string) and/or ``delete`` (a list of env keys), nothing else.
    EnvInputError naming the path and the bad key (never a value)."""
    text = _read_text(path, "overlay file")
    data: Any
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml  # a dependency of the plugin; loaded only when an overlay is given

            data = yaml.safe_load(text)
    except ValueError as exc:  # json.JSONDecodeError
        raise EnvInputError(f"overlay file {path}: not JSON: line {getattr(exc, 'lineno', '?')}") from None
    except Exception as exc:  # yaml.YAMLError: its message may quote the line, so only its position
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}" if mark is not None else "unknown position"
        raise EnvInputError(f"overlay file {path}: not YAML ({at})") from None
    where = f"overlay file {path}"
    if not isinstance(data, dict):
        raise EnvInputError(f"{where}: expected a mapping with 'set' and/or 'delete'")
    unknown = [key for key in data if key not in ("set", "delete")]
    if unknown:
        raise EnvInputError(f"{where}: unknown key {_shown_key(unknown[0])} (only 'set' and 'delete')")
    to_set = data.get("set") or {}
    to_delete = data.get("delete") or []
    if not isinstance(to_set, dict):
        raise EnvInputError(f"{where}: 'set' must be a mapping of env keys to strings")
    if not isinstance(to_delete, list):
        raise EnvInputError(f"{where}: 'delete' must be a list of env keys")
    values: dict[str, str] = {}
    for key, value in to_set.items():
        if not isinstance(key, str) or not ENV_KEY.fullmatch(key):
            raise EnvInputError(f"{where}: set: {_shown_key(key)} is not an env key")
        if not isinstance(value, str):
            raise EnvInputError(
                f"{where}: set.{key}: expected a string, got {type(value).__name__} (quote it in YAML)"
            )
        problem = _value_problem(value)
        if problem is not None:
            raise EnvInputError(f"{where}: set.{key}: {problem}")
        values[key] = value
    deleted: list[str] = []
    for key in to_delete:
        if not isinstance(key, str) or not ENV_KEY.fullmatch(key):
            raise EnvInputError(f"{where}: delete: {_shown_key(key)} is not an env key")
        if key in values:
            raise EnvInputError(f"{where}: delete: {key} is also in 'set'")
        if key not in deleted:
            deleted.append(key)
    if not values and not deleted:
        raise EnvInputError(f"{where}: nothing to set or delete")
    return OverlayChange(path, MappingProxyType(values), tuple(deleted))
