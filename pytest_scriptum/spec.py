"""What a smoke test declares, as plain frozen data: the records the markers are parsed into.

Standard library only (no pytest, no jsonschema): the matchers (``expect``) and the evidence
writers read these records without loading the plugin. ``pytest_scriptum.markers`` builds them
from marker arguments and case files and re-exports every name here.

The constructors mirror the markers: ``ScriptumOptions(script=None, *, timeout=None, ...)`` is the
signature of ``@pytest.mark.scriptum`` and ``Expectation(output=UNSET, *, match="subset", ...)``
that of ``@pytest.mark.smoke_expect``; every other parameter is keyword-only. The marker parser
binds a marker's arguments to these signatures, so they are the one list of accepted keys: an
unknown key is the ``TypeError`` Python raises for the call, never a check kept by hand.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:  # the annotation only: at run time this module stays standard library only
    from regex import Pattern as RegexPattern

__all__ = [
    "DEFAULT_STATUS",
    "JSON_NULL",
    "STATUSES",
    "UNSET",
    "BoundedPattern",
    "Expectation",
    "ItemMarkers",
    "ScriptumOptions",
    "SmokeCase",
    "SmokeSpec",
    "parse_dotted_path",
    "parse_path",
    "pointer",
]


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


class _JsonNull(enum.Enum):
    JSON_NULL = "JSON_NULL"

    def __repr__(self) -> str:
        return "JSON_NULL"


# Enum members rather than bare objects: they keep their identity across pickling (xdist workers).
UNSET: Final = _Unset.UNSET
"""``Expectation.output`` when no expected output was given."""

JSON_NULL: Final = _JsonNull.JSON_NULL
"""Write ``smoke_expect(output=JSON_NULL)`` to expect a JSON ``null`` output."""

# The thread statuses a smoke run can end in (the platform's documented vocabulary): terminal, or
# PAUSED (an `ask` waiting for ResumeThread). PENDING and RUNNING never reach a test.
STATUSES: Final = ("COMPLETED", "FAILED", "PAUSED", "CANCELLED")
DEFAULT_STATUS: Final = "COMPLETED"


@dataclass(frozen=True, kw_only=True)
class ScriptumOptions:
    """Arguments of the ``scriptum`` marker: ``scriptum(script=None, *, timeout=None, env=True,
    critical=False, serial=False, repeat=None, min_pass=None, advisory=False)``.

    ``script``: the script under test (None: ``--scriptum-script``); ``timeout``: the thread's
    deadline in seconds (None: the session's); ``env``: resolve the script's env; ``critical``: a
    failure fails the gate whatever the pass rate; ``serial``: run the thread when the test runs
    instead of dispatching it early; ``repeat``: independent attempts of the case (None:
    ``--scriptum-repeat``, default 1); ``min_pass``: passing decided attempts the case needs (None:
    every attempt); ``advisory``: run and reported, never gate evidence (DESIGN section 8).
    """

    script: str | None = field(default=None, kw_only=False)  # the marker's one positional
    timeout: float | None = None
    env: bool = True
    critical: bool = False
    serial: bool = False
    repeat: int | None = None
    min_pass: int | None = None
    advisory: bool = False


@dataclass(frozen=True)
class BoundedPattern:
    """A regex of an expectation: its source and its compiled form on the time-bounded engine
    (``regex``, the ``re`` syntax; built by ``pytest_scriptum.expect.compile_pattern``, which also
    matches it within a time bound). Equal and hashed by its source, as ``re`` patterns are: the
    engine's own compiled patterns compare by identity, so a pickled spec (xdist) would differ."""

    pattern: str
    compiled: RegexPattern[str] = field(compare=False, repr=False)

    def fullmatch(self, string: str, *, timeout: float | None = None) -> bool:
        """Whether the whole of ``string`` matches; TimeoutError past ``timeout`` seconds."""
        return self.compiled.fullmatch(string, timeout=timeout) is not None


@dataclass(frozen=True, kw_only=True, slots=True)  # thousands per session, kept to its end (DESIGN section 6)
class Expectation:
    """What a smoke thread must produce: ``smoke_expect(output=None, *, match="subset", schema=None,
    approx=None, regex=None, status="COMPLETED")`` or a case file's ``expect`` object.

    ``output``: the expected output (``UNSET``: none; ``None``: a JSON null); ``match``: "subset"
    or "exact"; ``schema``: a JSON Schema, or "declared" (the version's declared output contract);
    ``approx``: an absolute tolerance for every number, or one per output path (a JSON Pointer,
    :func:`parse_path`); ``regex``: a pattern per output path, matched in full, compiled by the
    time-bounded engine
    (``pytest_scriptum.expect.compile_pattern``); ``status``: one of :data:`STATUSES`.
    """

    output: Any = field(default=UNSET, kw_only=False)  # the marker's one positional
    match: Literal["subset", "exact"] = "subset"
    schema: Mapping[str, Any] | Literal["declared"] | None = None
    approx: float | Mapping[str, float] | None = None
    regex: Mapping[str, BoundedPattern] | None = None
    status: str = DEFAULT_STATUS


@dataclass(frozen=True, kw_only=True, slots=True)  # thousands per session, kept to its end (DESIGN section 6)
class SmokeCase:
    """One case file of a ``smoke_cases`` glob: its keys ``id``, ``input`` and ``expect`` (the
    file's, else the test's closest ``smoke_expect``), and the ``path`` it was read from (set by
    the parser, not a key of the file)."""

    id: str
    input: Any
    expect: Expectation
    path: Path


@dataclass(frozen=True, kw_only=True)
class SmokeSpec:
    """What a marker-declared smoke test runs (``input``, with ``options``) and expects."""

    input: Any
    expect: Expectation
    options: ScriptumOptions
    case: SmokeCase | None = None


@dataclass(frozen=True, kw_only=True)
class ItemMarkers:
    """Everything the plugin reads from one test's markers: the closest ``scriptum`` options
    (defaults without one) and the smoke spec (None when the test declares no smoke run)."""

    options: ScriptumOptions
    spec: SmokeSpec | None


_PATH_HELP: Final = (
    "paths are JSON Pointers like '/totals/amount' or '/lines/0/price' (RFC 6901: '~1' is a '/' "
    "and '~0' a '~' inside a key; '' is the whole output); the dotted 'lines.0.price' is read too"
)
_BAD_ESCAPE: Final = re.compile(r"~(?![01])")


def parse_path(path: object) -> tuple[str, ...]:
    """The segments of an output path: a JSON Pointer (RFC 6901) ``"/lines/0/price"`` ->
    ``("lines", "0", "price")``, ``""`` -> ``()`` (the whole output); ValueError when malformed.

    JSON Pointer is the one notation of paths into an output, in and out: the ``approx`` and
    ``regex`` keys of an :class:`Expectation` (in markers and case files), and every mismatch
    message (``pytest_scriptum.expect``). It is the field's standard (JSON Patch, JSON Schema's
    ``instanceLocation``, OpenAPI) and reaches every key, dots and slashes included. The dotted
    form of earlier releases (``"lines.0.price"``, no leading ``/``) is still read; it cannot
    name a key that holds a dot. A segment names an object's key, or indexes a list when it is a
    non-negative integer.
    """
    if not isinstance(path, str):
        raise ValueError(f"path {short_repr(path)} is not a string ({_PATH_HELP})")
    if path == "" or path.startswith("/"):
        segments = path.split("/")[1:]
        if any(_BAD_ESCAPE.search(segment) for segment in segments):
            raise ValueError(f"bad path {path!r}: '~' must be followed by 0 or 1 ({_PATH_HELP})")
        return tuple(segment.replace("~1", "/").replace("~0", "~") for segment in segments)
    segments = path.split(".")
    if any(not segment for segment in segments):
        raise ValueError(f"bad path {path!r}: empty segment ({_PATH_HELP})")
    return tuple(segments)


parse_dotted_path = parse_path
"""The name of :func:`parse_path` before JSON Pointer became the notation (it reads both)."""


def pointer(segments: Sequence[str | int]) -> str:
    """The JSON Pointer of path segments: ``("lines", 0, "a/b")`` -> ``"/lines/0/a~1b"``, ``()`` -> ``""``."""
    return "".join("/" + str(segment).replace("~", "~0").replace("/", "~1") for segment in segments)


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error texts about a value an author wrote."""
    try:
        text = repr(value)
    except Exception:  # a user object whose __repr__ breaks must not break the error message
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
