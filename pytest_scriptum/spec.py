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
from collections.abc import Mapping
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
    critical=False, serial=False)``.

    ``script``: the script under test (None: ``--scriptum-script``); ``timeout``: the thread's
    deadline in seconds (None: the session's); ``env``: resolve the script's env; ``critical``: a
    failure fails the gate whatever the pass rate; ``serial``: run the thread when the test runs
    instead of dispatching it early.
    """

    script: str | None = field(default=None, kw_only=False)  # the marker's one positional
    timeout: float | None = None
    env: bool = True
    critical: bool = False
    serial: bool = False


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


@dataclass(frozen=True, kw_only=True)
class Expectation:
    """What a smoke thread must produce: ``smoke_expect(output=None, *, match="subset", schema=None,
    approx=None, regex=None, status="COMPLETED")`` or a case file's ``expect`` object.

    ``output``: the expected output (``UNSET``: none; ``None``: a JSON null); ``match``: "subset"
    or "exact"; ``schema``: a JSON Schema, or "declared" (the version's declared output contract);
    ``approx``: an absolute tolerance for every number, or one per dotted path; ``regex``: a
    pattern per dotted path, matched in full, compiled by the time-bounded engine
    (``pytest_scriptum.expect.compile_pattern``); ``status``: one of :data:`STATUSES`.
    """

    output: Any = field(default=UNSET, kw_only=False)  # the marker's one positional
    match: Literal["subset", "exact"] = "subset"
    schema: Mapping[str, Any] | Literal["declared"] | None = None
    approx: float | Mapping[str, float] | None = None
    regex: Mapping[str, BoundedPattern] | None = None
    status: str = DEFAULT_STATUS


@dataclass(frozen=True, kw_only=True)
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


_DOTTED_HELP: Final = "paths are dotted keys like 'totals.amount' or 'lines.0.price'"


def parse_dotted_path(path: object) -> tuple[str, ...]:
    """Split ``"lines.0.price"`` into ``("lines", "0", "price")``; ValueError when malformed.

    The syntax of the ``approx`` and ``regex`` keys of an :class:`Expectation`: it lives with the
    records so that the matchers and the marker parser read the keys the same way.
    """
    if not isinstance(path, str):
        raise ValueError(f"path {short_repr(path)} is not a string ({_DOTTED_HELP})")
    segments = tuple(path.split("."))
    if not path or any(not segment for segment in segments):
        raise ValueError(f"bad path {path!r}: empty segment ({_DOTTED_HELP})")
    return segments


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error texts about a value an author wrote."""
    try:
        text = repr(value)
    except Exception:  # a user object whose __repr__ breaks must not break the error message
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
