"""Name and value rules of docs/http-gateway.md ("Limits"), shared by the API and the seed loader."""

from __future__ import annotations

import json
import re

from ._errors import invalid

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ENV_KEY",
    "MAX_INPUT_BYTES",
    "MAX_TIMEOUT_S",
    "SCRIPT_NAME",
    "check_env_key",
    "check_input_json",
    "check_script_name",
    "parse_timeout",
]

SCRIPT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_INPUT_BYTES = 1024 * 1024
DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 3600.0
# Shared semantics: "60s", "1.5s", "5m", "250ms", "1h"; "" = 60 s.
_TIMEOUT = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def check_script_name(name: str, field: str = "name") -> None:
    """ApiError INVALID_ARGUMENT unless `name` is a valid script name."""
    if not SCRIPT_NAME.fullmatch(name):
        raise invalid(
            f"{field}: invalid script name {name!r} (lowercase letters, digits and '-', "
            "starting with a letter or digit, 1..64 characters)"
        )


def check_env_key(key: str, field: str = "key") -> None:
    """ApiError INVALID_ARGUMENT unless `key` is a valid env key."""
    if not ENV_KEY.fullmatch(key):
        raise invalid(
            f"{field}: invalid env key {key!r} (letters, digits and '_', not starting with a digit, "
            "1..128 characters)"
        )


def parse_timeout(text: str, field: str = "timeout") -> float:
    """Seconds of a duration string ("60s", "1.5s", "5m", "250ms", "1h"); "" is 60 s.

    ApiError INVALID_ARGUMENT for another form, for zero, and for more than 3600 s.
    """
    if not text:
        return DEFAULT_TIMEOUT_S
    match = _TIMEOUT.fullmatch(text.strip())
    if match is None:
        raise invalid(
            f"{field}: {text!r} is not a duration (a number and a unit ms, s, m or h, e.g. '60s', '5m')"
        )
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0:
        raise invalid(f"{field}: {text!r} must be greater than zero")
    if seconds > MAX_TIMEOUT_S:
        raise invalid(f"{field}: {text!r} is over the limit of {MAX_TIMEOUT_S:g}s")
    return seconds


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def check_input_json(input_json: str, field: str = "input_json") -> object:
    """The decoded input; ApiError INVALID_ARGUMENT when it is not JSON or over 1 MiB (HTTP 413).

    "" is accepted as `{}` (the CLI sends no input when none is given).
    """
    size = len(input_json.encode("utf-8"))
    if size > MAX_INPUT_BYTES:
        raise invalid(
            f"{field} is {size} bytes, over the {MAX_INPUT_BYTES} byte (1 MiB) limit", http_status=413
        )
    if not input_json.strip():
        return {}
    try:
        return json.loads(input_json, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise invalid(
            f"{field} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise invalid(f"{field} is not valid JSON: {exc}") from None
