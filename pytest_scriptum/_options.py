"""The options table of DESIGN.md section 2, resolved into one frozen config.

Precedence is CLI > environment variable > ini key > default, like pytest-asyncio's
``asyncio_mode`` (CLI with ini fallback, a UsageError that lists the accepted values). A path
from the ini file is relative to the ini file's directory; on the command line, to the directory
pytest was invoked from. The bearer token is never an option value: it is read from the
environment variable named by ``scriptum_token_env``, else from ``DODIL_TOKEN``, else from
``SCRIPTUM_TOKEN`` (the platform CLI's own name).

Each option is written once, as a row of ``OPTIONS``: the CLI flag and ini key, the dataclass
default of ``ScriptumConfig``, the report header and how a verification re-run gets the option
(``rerun_args``) are all read from that row.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

import pytest

from pytest_scriptum._limits import (
    AUTO_CONCURRENCY_CAP,
    AUTO_CONCURRENCY_START,
    DEFAULT_THREAD_TIMEOUT_S,
    ENV_KEY,
    MAX_INCIDENT_CHARS,
    MAX_OPTION_TEXT,
    MAX_PATH_CHARS,
    MAX_REPEAT,
    MAX_RETRIES,
    MAX_SHARDS,
    MAX_THREAD_TIMEOUT_S,
    MIN_THREAD_TIMEOUT_S,
    SCRIPT_NAME,
)

__all__ = [
    "CLEAR",
    "DRAFT",
    "OPTIONS",
    "VERIFICATION_OPTIONS_ENV",
    "OptionSpec",
    "Rerun",
    "ScriptumConfig",
    "Shard",
    "add_options",
    "from_environment",
    "rerun_options",
    "resolve",
]

EMBEDDED = "embedded"
DEFAULT_TOKEN_ENV = "DODIL_TOKEN"
# Without scriptum_token_env, the first of these that is set holds the token (DESIGN section 2:
# DODIL_TOKEN is the shared Dodil variable, SCRIPTUM_TOKEN the platform CLI's).
DEFAULT_TOKEN_ENVS = (DEFAULT_TOKEN_ENV, "SCRIPTUM_TOKEN")


class _Invalid(ValueError):
    """A value that does not parse; the message says what is accepted."""


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise _Invalid(f"expected an integer >= {minimum}") from None
        if value < minimum:
            raise _Invalid(f"expected an integer >= {minimum}")
        return value

    return parse


def _concurrency(raw: str) -> int | Literal["auto"]:
    # DESIGN section 2: "auto" (adaptive, the default) or a fixed number of runs in flight.
    if raw.strip().lower() == "auto":
        return "auto"
    try:
        return _int_at_least(1)(raw)
    except _Invalid:
        raise _Invalid("expected auto or an integer >= 1") from None


def _seconds(raw: str) -> float:
    # DESIGN section 2: a per-thread deadline of at least a second (anything shorter times out every
    # run and proves nothing), at most the platform's cap (the client sends "<n>s").
    accepted = f"expected a number of seconds from {MIN_THREAD_TIMEOUT_S:g} to {MAX_THREAD_TIMEOUT_S:g}"
    try:
        value = float(raw.strip())
    except ValueError:
        raise _Invalid(accepted) from None
    if not math.isfinite(value) or not MIN_THREAD_TIMEOUT_S <= value <= MAX_THREAD_TIMEOUT_S:
        raise _Invalid(accepted)
    return value


def _retries(raw: str) -> int:
    # DESIGN section 2: at most MAX_RETRIES per call; a million retries hammers a platform in an
    # incident and parks CI for hours.
    value = _int_at_least(0)(raw)
    if value > MAX_RETRIES:
        raise _Invalid(f"expected an integer from 0 to {MAX_RETRIES}")
    return value


def _repeat(raw: str) -> int:
    # DESIGN section 8 "Repeats": attempts per smoke case, capped (``_limits.MAX_REPEAT``).
    value = _int_at_least(1)(raw)
    if value > MAX_REPEAT:
        raise _Invalid(f"expected an integer from 1 to {MAX_REPEAT} (the cap on attempts per case)")
    return value


@dataclass(frozen=True)
class Shard:
    """``--scriptum-shard=I/N``: this session runs shard ``index`` (1-based) of ``total``
    (1 <= index <= total <= ``MAX_SHARDS``; DESIGN section 8 "Sharded CI gate"). ``str()`` is the
    option's text, ``I/N``."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def _shard(raw: str) -> Shard:
    accepted = f"expected I/N with 1 <= I <= N <= {MAX_SHARDS} (e.g. 2/4)"
    match = re.fullmatch(r"(\d{1,4})/(\d{1,4})", _printable(raw.strip()).replace(" ", ""))
    if match is None:
        raise _Invalid(accepted)
    index, total = int(match.group(1)), int(match.group(2))
    if not 1 <= index <= total <= MAX_SHARDS:
        raise _Invalid(accepted)
    return Shard(index, total)


DRAFT: Final = "draft"
"""``--scriptum-version=draft``: the candidate is the script's current draft (DESIGN section 8)."""


def _version(raw: str) -> int | Literal["draft"]:
    # DESIGN section 2: a version (int >= 1), or ``draft`` (section 8: every run is TestScriptDraft).
    if raw.strip().lower() == DRAFT:
        return DRAFT
    try:
        return _int_at_least(1)(raw)
    except _Invalid:
        raise _Invalid("expected an integer >= 1 or 'draft'") from None


def _rate(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise _Invalid("expected a number from 0 to 1") from None
    if not 0.0 <= value <= 1.0:
        raise _Invalid("expected a number from 0 to 1")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        if value not in choices:
            raise _Invalid("accepted values: " + ", ".join(choices))
        return value

    return parse


def _script(raw: str) -> str:
    value = raw.strip()
    if not SCRIPT_NAME.fullmatch(value):
        raise _Invalid("expected a script name of lowercase letters, digits and '-' (e.g. invoice-parser)")
    return value


def _endpoint(raw: str) -> str:
    value = _printable(raw.strip())
    if value == EMBEDDED:
        return value
    host, sep, port = value.rpartition(":")
    bad_host = not host or any(c.isspace() for c in host)
    if not sep or bad_host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _Invalid("expected 'embedded' or a gRPC target 'host:port' (e.g. rpc.dev.dodil.io:443)")
    return value


def _url(raw: str) -> str:
    value = _printable(raw.strip()).rstrip("/")
    if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", value):
        raise _Invalid("expected an http:// or https:// base URL (e.g. https://api.dev.dodil.io:443)")
    return value


def _printable(value: str, *, limit: int = MAX_OPTION_TEXT) -> str:
    """``value`` when it is printable and at most ``limit`` characters, else _Invalid.

    Every user string the plugin passes on (a header, the verification child, the platform's
    records) goes through here at option time (issue 12 input 5: a newline in an incident id
    once smuggled options into the child's argument file)."""
    if not value.isprintable():
        raise _Invalid("expected printable characters only (no newline, tab or other control character)")
    if len(value) > limit:
        raise _Invalid(f"expected at most {limit} characters, got {len(value)}")
    return value


def _text(raw: str) -> str:
    value = _printable(raw.strip())
    if not value:
        raise _Invalid("expected a non-empty value")
    return value


def _incident(raw: str) -> str:
    # DESIGN section 2: "printable, no control characters, <= 200 chars".
    value = _printable(raw.strip(), limit=MAX_INCIDENT_CHARS)
    if not value:
        raise _Invalid("expected a non-empty incident id")
    return value


def _keys(raw: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    bad = [k for k in keys if not ENV_KEY.fullmatch(k)]
    if bad:
        raise _Invalid(f"expected comma-separated env keys; not a key: {', '.join(bad)}")
    return keys


def _env_name(raw: str) -> str:
    value = raw.strip()
    if not ENV_KEY.fullmatch(value):
        raise _Invalid("expected the name of an environment variable (e.g. DODIL_TOKEN)")
    return value


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise _Invalid("accepted values: true, false")


def _path(raw: str) -> str:
    return _printable(_text(raw), limit=MAX_PATH_CHARS)


# How a verification re-run gets an option: "forward" the parent's effective value, "override" with
# the value the re-run sets (its version, its bundle, the parent's connection, ...), or "omit" it
# (the child reads its ini file and environment like the parent did).
Rerun = Literal["forward", "override", "omit"]


class _Clear:
    def __repr__(self) -> str:
        return "CLEAR"


CLEAR: Final = _Clear()
"""An override for ``rerun_options``: the option is unset in the re-run, whatever its ini file says."""

VERIFICATION_OPTIONS_ENV: Final = "SCRIPTUM_VERIFICATION_OPTIONS"
"""Set by the parent in a verification re-run's environment: the JSON file of its options."""

# What a verification re-run's header and bundle say an option came from.
FROM_PARENT = "verification parent"


@dataclass(frozen=True)
class OptionSpec:
    """One row of the options table."""

    name: str
    help: str
    parse: Callable[[str], Any]
    default: Any = None
    cli: str | None = None
    ini: str | None = None
    env: str | None = None
    env_aliases: tuple[str, ...] = ()  # read after ``env``, in order (the platform CLI's names)
    flag: bool = False  # a CLI switch without a value
    is_path: bool = False
    metavar: str | None = None
    header: bool = True  # shown in the report header with its source
    rerun: Rerun = "forward"

    @property
    def envs(self) -> tuple[str, ...]:
        """Every environment variable of the option, the first set one wins."""
        return ((self.env,) if self.env else ()) + self.env_aliases

    def text(self, value: Any) -> str | None:
        """``value`` as the text this row's parser accepts (what the verification re-run receives),
        or None for an unset value (None, ``CLEAR``): a tuple is comma-separated, a switch is
        ``true``/``false``."""
        if value is None or value is CLEAR:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return ",".join(value) if isinstance(value, tuple) else str(value)


# In the order of the report header (and of --help).
OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "version",
        "candidate version every smoke thread is pinned to (int >= 1), or 'draft': every smoke run "
        "tests the script's current draft (TestScriptDraft)",
        _version,
        cli="--scriptum-version",
        ini="scriptum_version",
        env="SCRIPTUM_VERSION",
        metavar="N|draft",
        rerun="override",  # the rollback target
    ),
    OptionSpec(
        "script",
        "default script under test",
        _script,
        cli="--scriptum-script",
        ini="scriptum_script",
        env="SCRIPTUM_SCRIPT",
        metavar="NAME",
    ),
    OptionSpec(
        "endpoint",
        "gRPC host:port, or 'embedded' to start the bundled local server",
        _endpoint,
        cli="--scriptum-endpoint",
        ini="scriptum_endpoint",
        env="SCRIPTUM_ENDPOINT",
        env_aliases=("SCRIPTUM_API_ENDPOINT",),
        metavar="T",
        rerun="override",  # the parent's connection: never a second embedded server
    ),
    OptionSpec(
        "http_url",
        "HTTP gateway base URL (derived automatically for 'embedded')",
        _url,
        cli="--scriptum-http-url",
        ini="scriptum_http_url",
        env="SCRIPTUM_HTTP_URL",
        metavar="URL",
        rerun="override",
    ),
    OptionSpec(
        "transport",
        "transport of the plugin's client: grpc or http (default grpc)",
        _choice("grpc", "http"),
        default="grpc",
        cli="--scriptum-transport",
        ini="scriptum_transport",
        metavar="grpc|http",
    ),
    OptionSpec(
        "org",
        "organization id sent as x-organization-id",
        _text,
        cli="--scriptum-org",
        ini="scriptum_org",
        env="SCRIPTUM_ORG_ID",
        metavar="ID",
        rerun="override",
    ),
    OptionSpec(
        "org_name",
        "organization name sent as x-organization-name",
        _text,
        cli="--scriptum-org-name",
        ini="scriptum_org_name",
        env="SCRIPTUM_ORG_NAME",
        metavar="NAME",
        rerun="override",
    ),
    OptionSpec(
        "rollback",
        "what a failed gate does: auto, off or dry-run (default auto); defer: a shard of a sharded "
        "gate (--scriptum-shard) decides nothing and never rolls back, `scriptum-gate merge` does",
        _choice("auto", "off", "dry-run", "defer"),
        default="auto",
        cli="--scriptum-rollback",
        ini="scriptum_rollback",
        metavar="auto|off|dry-run|defer",
        rerun="override",  # off: the re-run never rolls back
    ),
    OptionSpec(
        "rollback_to",
        "explicit rollback target version (default: the version active before the candidate)",
        _int_at_least(1),
        cli="--scriptum-rollback-to",
        ini="scriptum_rollback_to",
        metavar="N",
        rerun="override",
    ),
    OptionSpec(
        "min_pass_rate",
        "share of decided smoke tests that must pass, 0..1 (default 1.0)",
        _rate,
        default=1.0,
        cli="--scriptum-min-pass-rate",
        ini="scriptum_min_pass_rate",
        metavar="F",
    ),
    OptionSpec(
        "min_tests",
        "fewer decided smoke tests make the gate inconclusive (default 1)",
        _int_at_least(0),
        default=1,
        cli="--scriptum-min-tests",
        ini="scriptum_min_tests",
        metavar="N",
    ),
    OptionSpec(
        "max_errors",
        "platform errors allowed before the gate is inconclusive (default 0)",
        _int_at_least(0),
        default=0,
        cli="--scriptum-max-errors",
        ini="scriptum_max_errors",
        metavar="N",
    ),
    OptionSpec(
        "require_env",
        "env keys the effective env must hold (preflight; values are never shown or stored)",
        _keys,
        default=(),
        cli="--scriptum-require-env",
        ini="scriptum_require_env",
        metavar="K1,K2",
    ),
    OptionSpec(
        "secret_env",
        "env keys whose values are secrets whatever their name (masked wherever the session writes, "
        "like keys naming KEY, TOKEN, SECRET, PASSWORD, ...; DESIGN section 4)",
        _keys,
        default=(),
        cli="--scriptum-secret-env",
        ini="scriptum_secret_env",
        metavar="K1,K2",
    ),
    OptionSpec(
        "incident",
        f"incident/ticket id recorded on the rollback and in the evidence (printable, at most "
        f"{MAX_INCIDENT_CHARS} characters)",
        _incident,
        cli="--scriptum-incident",
        env="SCRIPTUM_INCIDENT",
        metavar="ID",
    ),
    OptionSpec(
        "evidence",
        "path of the JSON evidence bundle",
        _path,
        cli="--scriptum-evidence",
        ini="scriptum_evidence",
        is_path=True,
        metavar="PATH",
        rerun="override",  # the re-run's own bundle
    ),
    OptionSpec(
        "concurrency",
        f"thread runs in flight per process: auto (default; starts at {AUTO_CONCURRENCY_START}, grows "
        f"while the platform keeps up, backs off when it pushes back, at most {AUTO_CONCURRENCY_CAP}) "
        "or a fixed number",
        _concurrency,
        default="auto",
        cli="--scriptum-concurrency",
        ini="scriptum_concurrency",
        metavar="auto|N",
    ),
    OptionSpec(
        "timeout",
        f"per-thread deadline in seconds (default {DEFAULT_THREAD_TIMEOUT_S:g}, at least "
        f"{MIN_THREAD_TIMEOUT_S:g})",
        _seconds,
        default=DEFAULT_THREAD_TIMEOUT_S,
        cli="--scriptum-timeout",
        ini="scriptum_timeout",
        metavar="S",
    ),
    OptionSpec(
        "retries",
        f"retries of platform errors only, never of failed assertions (default 2, at most {MAX_RETRIES})",
        _retries,
        default=2,
        cli="--scriptum-retries",
        ini="scriptum_retries",
        metavar="N",
    ),
    OptionSpec(
        "repeat",
        f"section 8: default attempts per smoke case (default 1, at most {MAX_REPEAT}); each case "
        "passes with min_pass (default: all) passing attempts",
        _repeat,
        default=1,
        cli="--scriptum-repeat",
        ini="scriptum_repeat",
        metavar="N",
    ),
    OptionSpec(
        "baseline",
        "section 8: 'paired' also runs every marker-declared case on the rollback target, concurrently, "
        "to tell a regression (the candidate alone fails) from an outage (both fail: an error)",
        _choice("off", "paired"),
        default="off",
        cli="--scriptum-baseline",
        ini="scriptum_baseline",
        metavar="off|paired",
        rerun="override",  # off: the re-run is pinned to the target itself
    ),
    OptionSpec(
        "fail_fast",
        "once the gate can no longer pass, cancel outstanding runs and roll back at once",
        _bool,
        default=False,
        cli="--scriptum-fail-fast",
        ini="scriptum_fail_fast",
        flag=True,
        rerun="omit",
    ),
    OptionSpec(
        "no_env",
        "run threads without env resolution (the runbook says keep it on)",
        _bool,
        default=False,
        cli="--scriptum-no-env",
        flag=True,
    ),
    OptionSpec(
        "insecure",
        "allow plaintext to a non-loopback host (TLS is the default off-loopback)",
        _bool,
        default=False,
        cli="--scriptum-insecure",
        ini="scriptum_insecure",
        flag=True,
    ),
    OptionSpec(
        "seed",
        "seed directory for the embedded server",
        _path,
        cli="--scriptum-seed",
        ini="scriptum_seed",
        is_path=True,
        metavar="DIR",
        rerun="omit",  # the re-run uses the parent's server
    ),
    OptionSpec(
        "token_env",
        "name of the environment variable holding the bearer token (default: DODIL_TOKEN, then "
        "SCRIPTUM_TOKEN)",
        _env_name,
        default=DEFAULT_TOKEN_ENV,
        ini="scriptum_token_env",
        header=False,  # the header shows where the token comes from, never its value
        rerun="override",  # the re-run reads the parent's token from its own variable
    ),
    OptionSpec(
        "shard",
        f"run shard I of N of the selected smoke tests (1 <= I <= N <= {MAX_SHARDS}; a stable split "
        "by node id, other tests run in shard 1 only); the bundle records the shard and the suite",
        _shard,
        cli="--scriptum-shard",
        ini="scriptum_shard",
        env="SCRIPTUM_SHARD",
        metavar="I/N",
        rerun="override",  # the verification re-run repeats the node ids it is given, unsharded
    ),
    OptionSpec(
        "publish",
        "publish the script's draft (PublishScriptDraft) after preflight and pin every run to the "
        "version it creates, the version active before being the rollback target; with "
        "--scriptum-version=draft: gate the draft, publish only if it passes, then gate the published "
        "version (DESIGN section 8)",
        _bool,
        default=False,
        cli="--scriptum-publish",
        ini="scriptum_publish",
        flag=True,
        rerun="override",  # a re-run never publishes
    ),
    OptionSpec(
        "env_file",
        "tenant env to import (ImportEnvVars, dotenv: KEY=VALUE lines, existing keys overwritten, blank "
        "lines and # comments ignored) before preflight; values are never shown (DESIGN section 8)",
        _path,
        cli="--scriptum-env-file",
        ini="scriptum_env_file",
        is_path=True,
        metavar="PATH",
        rerun="override",  # the re-run imports nothing
    ),
    OptionSpec(
        "overlay",
        "script overlay change to apply (UpdateScriptEnv) before preflight: YAML or JSON with 'set' "
        "(KEY: value) and/or 'delete' (keys); a rollback restores the overlay (DESIGN section 8)",
        _path,
        cli="--scriptum-overlay",
        ini="scriptum_overlay",
        is_path=True,
        metavar="PATH",
        rerun="override",  # the re-run changes nothing
    ),
    # Internal: set by the parent session on the verification re-run after a rollback.
    OptionSpec(
        "verification_of",
        "",
        _int_at_least(1),
        cli="--scriptum-verification-of",
        metavar="N",
        header=False,
        rerun="override",
    ),
)

_SPECS: Mapping[str, OptionSpec] = MappingProxyType({spec.name: spec for spec in OPTIONS})

# The table's defaults: the dataclass below takes its defaults from here.
_DEFAULTS: Mapping[str, Any] = MappingProxyType({spec.name: spec.default for spec in OPTIONS})


@dataclass(frozen=True)
class ScriptumConfig:
    """Every option's effective value, and where it came from (``sources[name]``).

    One field per row of ``OPTIONS`` (a test checks they match), plus the token and the sources.
    """

    version: int | Literal["draft"] | None = _DEFAULTS["version"]
    script: str | None = _DEFAULTS["script"]
    endpoint: str | None = _DEFAULTS["endpoint"]
    http_url: str | None = _DEFAULTS["http_url"]
    transport: Literal["grpc", "http"] = _DEFAULTS["transport"]
    org: str | None = _DEFAULTS["org"]
    org_name: str | None = _DEFAULTS["org_name"]
    rollback: Literal["auto", "off", "dry-run", "defer"] = _DEFAULTS["rollback"]
    rollback_to: int | None = _DEFAULTS["rollback_to"]
    min_pass_rate: float = _DEFAULTS["min_pass_rate"]
    min_tests: int = _DEFAULTS["min_tests"]
    max_errors: int = _DEFAULTS["max_errors"]
    require_env: tuple[str, ...] = _DEFAULTS["require_env"]
    secret_env: tuple[str, ...] = _DEFAULTS["secret_env"]
    incident: str | None = _DEFAULTS["incident"]
    evidence: Path | None = _DEFAULTS["evidence"]
    concurrency: int | Literal["auto"] = _DEFAULTS["concurrency"]
    timeout: float = _DEFAULTS["timeout"]
    retries: int = _DEFAULTS["retries"]
    fail_fast: bool = _DEFAULTS["fail_fast"]
    repeat: int = _DEFAULTS["repeat"]
    baseline: Literal["off", "paired"] = _DEFAULTS["baseline"]
    no_env: bool = _DEFAULTS["no_env"]
    insecure: bool = _DEFAULTS["insecure"]
    seed: Path | None = _DEFAULTS["seed"]
    token_env: str = _DEFAULTS["token_env"]
    shard: Shard | None = _DEFAULTS["shard"]
    publish: bool = _DEFAULTS["publish"]
    env_file: Path | None = _DEFAULTS["env_file"]
    overlay: Path | None = _DEFAULTS["overlay"]
    verification_of: int | None = _DEFAULTS["verification_of"]
    token: str | None = field(default=None, repr=False)
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        """Whether the session starts the bundled local server."""
        return self.endpoint == EMBEDDED

    @property
    def deferred(self) -> bool:
        """A shard of a sharded gate (``--scriptum-rollback=defer``): records, decides nothing."""
        return self.rollback == "defer" and not self.is_verification_run

    @property
    def draft(self) -> bool:
        """``--scriptum-version=draft``: the candidate is the current draft (DESIGN section 8)."""
        return self.version == DRAFT

    @property
    def has_candidate(self) -> bool:
        """Whether smoke tests have a candidate: ``--scriptum-version`` given, or the version
        ``--scriptum-publish`` will create."""
        return self.version is not None or self.publish

    @property
    def pinned_version(self) -> int | None:
        """The numbered version given as the candidate; None for ``draft`` or no candidate."""
        return self.version if isinstance(self.version, int) else None

    @property
    def candidate_label(self) -> str:
        """The candidate as messages name it: ``v4``, or ``draft``."""
        return DRAFT if self.draft else f"v{self.version}"

    @property
    def is_verification_run(self) -> bool:
        """This session is the verification re-run of a rollback (``--scriptum-verification-of``)."""
        return self.verification_of is not None

    def header_lines(self, verbose: bool = False) -> list[str]:
        """The report header (DESIGN section 2 "Options"), never the token: one short line — version,
        script, endpoint, rollback mode, and for a remote endpoint whether the token variable is
        set — and under ``verbose`` (``-v``) every effective value with its source, one a line.
        An embedded server makes its own token: nothing to warn about."""
        short = [
            f"{name}={getattr(self, name)}"
            for name in ("version", "script", "endpoint", "rollback")
            if getattr(self, name) is not None
        ]
        if self.embedded:
            token = "per-session (embedded server)"
        else:
            token = f"${self.token_env} ({'set' if self.token else 'not set'})"
            short.append(f"token={token}")
        lines = ["scriptum: " + ", ".join(short)]
        if not verbose:
            return lines
        for spec in OPTIONS:
            value = getattr(self, spec.name)
            if not spec.header or value is None or value == ():
                continue
            if isinstance(value, tuple):
                value = ",".join(value)
            lines.append(f"scriptum:   {spec.name}={value} ({self.sources.get(spec.name, 'default')})")
        lines.append(f"scriptum:   token={token}")
        return lines


def rerun_options(cfg: ScriptumConfig, overrides: Mapping[str, Any]) -> dict[str, str | None]:
    """The options of a verification re-run, by row name, as the text each row's parser accepts
    (None: unset in the re-run, whatever its ini file or environment says).

    An option marked ``rerun="forward"`` gets this session's effective value; one marked
    ``"override"`` the value in ``overrides`` (every such option must be there; None and ``CLEAR``
    leave it unset); one marked ``"omit"`` is not there (the re-run reads its ini file and
    environment like the parent did). ValueError for an override of an option that is not marked
    ``"override"``, or a missing one.

    The parent hands this mapping to the child as a JSON file named by
    ``VERIFICATION_OPTIONS_ENV`` (issue 12 input 5: a structured channel, never command-line text
    built from user strings); the child's ``resolve`` parses every value with the row's own parser
    again, so the re-run validates what it receives exactly as the parent did.
    """
    wanted = {spec.name for spec in OPTIONS if spec.rerun == "override"}
    if set(overrides) != wanted:
        raise ValueError(
            f"re-run overrides must be exactly {sorted(wanted)}; got {sorted(overrides)}"
        )
    return {
        spec.name: spec.text(getattr(cfg, spec.name) if spec.rerun == "forward" else overrides[spec.name])
        for spec in OPTIONS
        if spec.rerun != "omit"
    }


def _parent_options(env: Mapping[str, str]) -> Mapping[str, str | None] | None:
    """A verification re-run's options from its parent (``rerun_options``), or None in any other
    session. A file that cannot be read is a UsageError (the parent reads the child's exit code)."""
    name = env.get(VERIFICATION_OPTIONS_ENV, "")
    if not name:
        return None
    try:
        data = json.loads(Path(name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(
            f"env {VERIFICATION_OPTIONS_ENV}: cannot read the re-run's options: {exc}"
        ) from None
    known = {spec.name for spec in OPTIONS}
    if not isinstance(data, dict) or not all(
        key in known and (value is None or isinstance(value, str)) for key, value in data.items()
    ):
        raise pytest.UsageError(f"env {VERIFICATION_OPTIONS_ENV}: not a mapping of option names to text")
    return data


def add_options(parser: pytest.Parser) -> None:
    """Register every CLI flag and ini key of the table."""
    group = parser.getgroup("scriptum", "Scriptum pinned smoke tests, promotion gate and rollback")
    for spec in OPTIONS:
        if spec.cli:
            help_text = (
                spec.help + (f" [env {', '.join(spec.envs)}]" if spec.envs else "")
                if spec.help
                else argparse.SUPPRESS
            )
            if spec.flag:
                group.addoption(
                    spec.cli, action="store_true", default=None, dest=f"scriptum_{spec.name}", help=help_text
                )
            else:
                group.addoption(
                    spec.cli,
                    action="store",
                    default=None,
                    dest=f"scriptum_{spec.name}",
                    metavar=spec.metavar,
                    help=help_text,
                )
        if spec.ini:
            parser.addini(spec.ini, spec.help, type=_ini_type(spec), default=None)


def _ini_type(spec: OptionSpec) -> Literal["bool", "paths", "string"]:
    """The ini type pytest shows in ``--help`` and parses with: ``bool`` for a switch, ``paths``
    for a path (pytest makes it relative to the ini file's directory), ``string`` for the rest —
    numbers too: the row's own parser gives the bounded, option-naming error DESIGN section 2
    asks for, which pytest's ``int``/``float`` would not."""
    if spec.flag:
        return "bool"
    return "paths" if spec.is_path else "string"


def _ini_raw(config: pytest.Config, spec: OptionSpec) -> str | None:
    if not spec.ini:
        return None
    raw = config.getini(spec.ini)
    # Typed keys (``_ini_type``) come back as bool or list[Path]: the row's parser reads text.
    if raw is None or isinstance(raw, bool):
        return None if raw is None else ("true" if raw else "false")
    if isinstance(raw, list):
        if len(raw) > 1:
            raise pytest.UsageError(
                f"{spec.ini}: one path expected, got {len(raw)} (quote a path that holds spaces)"
            )
        return str(raw[0]) if raw else None
    assert isinstance(raw, str)
    return raw if raw.strip() else None


def resolve(config: pytest.Config, environ: Mapping[str, str] | None = None) -> ScriptumConfig:
    """Resolve the table for this session; a bad value is a UsageError naming option and accepted values."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    ini_dir = config.inipath.parent if config.inipath else config.rootpath
    ini_name = config.inipath.name if config.inipath else "ini"
    parent = _parent_options(env)
    for spec in OPTIONS:
        cli_raw = config.getoption(f"scriptum_{spec.name}", None) if spec.cli else None
        candidates: list[tuple[str, Any, Path]] = []
        if parent is not None and spec.name in parent:
            # A verification re-run: the parent's value wins over everything, unset included.
            if parent[spec.name] is None:
                values[spec.name] = spec.default
                sources[spec.name] = FROM_PARENT
                continue
            candidates.append((FROM_PARENT, parent[spec.name], config.invocation_params.dir))
        elif cli_raw is not None:
            candidates.append((spec.cli or "", cli_raw, config.invocation_params.dir))
        for name in spec.envs:
            if env.get(name, "").strip():
                candidates.append((f"env {name}", env[name], config.invocation_params.dir))
                break
        ini_raw = _ini_raw(config, spec)
        if ini_raw is not None:
            candidates.append((f"{ini_name} {spec.ini}", ini_raw, ini_dir))
        if not candidates:
            values[spec.name] = spec.default
            sources[spec.name] = "default"
            continue
        where, raw, base = candidates[0]
        if spec.flag and raw is True:
            value: Any = True
        else:
            try:
                value = spec.parse(str(raw))
            except _Invalid as exc:
                raise pytest.UsageError(
                    f"{where}={_shown(str(raw))}: invalid value for {_label(spec)}: {exc}"
                ) from None
        if spec.is_path:
            try:
                value = (base / value).resolve()
            except (OSError, RuntimeError) as exc:  # a symlink loop: RuntimeError up to Python 3.12
                raise pytest.UsageError(
                    f"{where}={_shown(str(raw))}: invalid value for {_label(spec)}: the path cannot be "
                    f"resolved ({exc})"
                ) from None
        values[spec.name] = value
        sources[spec.name] = where
    if values["rollback"] == "defer" and values["shard"] is None:
        # DESIGN section 8: only a shard defers; an unsharded session that decides nothing would
        # leave a failed candidate active with no merge to come.
        raise pytest.UsageError(
            f"{sources['rollback']}=defer: invalid value for {_label(_SPECS['rollback'])}: defer is "
            "for a shard of a sharded gate; set --scriptum-shard=I/N (or SCRIPTUM_SHARD / scriptum_shard)"
        )
    _check_publish(values, sources)
    explicit = sources["token_env"] != "default"
    values["token_env"], values["token"] = _token(env, values["token_env"], explicit=explicit)
    return ScriptumConfig(**values, sources=sources)


def _check_publish(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """``--scriptum-publish`` publishes the draft (DESIGN section 8): a numbered candidate contradicts
    it, and a shard decides nothing, so it must never publish (each shard would publish again)."""
    if not values["publish"]:
        return
    where = sources["publish"]  # --scriptum-publish, or the ini key it came from
    if isinstance(values["version"], int):
        raise pytest.UsageError(
            f"{where} publishes the draft and pins every run to the version it creates, but "
            f"{sources['version']}={values['version']} names a version already published: drop "
            "--scriptum-version, or pass --scriptum-version=draft to gate the draft before publishing"
        )
    if values["shard"] is not None:
        raise pytest.UsageError(
            f"{where} cannot be used with --scriptum-shard: every shard would publish the draft again; "
            "publish once, then gate the published version with the sharded gate"
        )


def from_environment(env: Mapping[str, str], **given: Any) -> ScriptumConfig:
    """A config without a pytest session (``scriptum-gate merge``): every row from its environment
    variables, parsed by the row's own parser (a bad value is a ValueError naming the variable and
    the rule), then ``given`` (already validated values, by row name) over them."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in OPTIONS:
        values[spec.name], sources[spec.name] = spec.default, "default"
        for name in spec.envs:
            if env.get(name, "").strip():
                try:
                    values[spec.name] = spec.parse(env[name])
                except _Invalid as exc:
                    raise ValueError(f"env {name}={_shown(env[name])}: invalid value: {exc}") from None
                sources[spec.name] = f"env {name}"
                break
    for name, value in given.items():
        values[name], sources[name] = value, "merge"
    values["token_env"], values["token"] = _token(env, values["token_env"], explicit=False)
    return ScriptumConfig(**values, sources=sources)


def _token(env: Mapping[str, str], token_env: str, *, explicit: bool) -> tuple[str, str | None]:
    """(the variable the token comes from, the token or None). A configured ``scriptum_token_env``
    is the only place looked at; by default the first set of DEFAULT_TOKEN_ENVS."""
    names = (token_env,) if explicit else DEFAULT_TOKEN_ENVS
    for name in names:
        if env.get(name):
            return name, env[name]
    return names[0], None


def _shown(raw: str) -> str:
    """A rejected value as a usage error shows it: on one line (control characters escaped, as
    repr does) and cut short, so a hostile value can neither forge terminal lines nor flood them."""
    shown = raw if raw.isprintable() else repr(raw)[1:-1]
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _label(spec: OptionSpec) -> str:
    names = [n for n in (spec.cli, spec.ini and f"ini {spec.ini}") if n] + [f"env {e}" for e in spec.envs]
    return " / ".join(names)
