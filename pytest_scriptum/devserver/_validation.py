"""Name rules of docs/http-gateway.md ("Limits"), shared by the API and the seed loader."""

from __future__ import annotations

import re

from ._errors import invalid

__all__ = ["ENV_KEY", "MAX_INPUT_BYTES", "SCRIPT_NAME", "check_env_key", "check_script_name"]

SCRIPT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_INPUT_BYTES = 1024 * 1024


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
