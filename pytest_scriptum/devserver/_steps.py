"""Step records of a thread: what `context.step`, `context.ask` and `context.tool` leave behind.

A record is kept as a plain dict while the thread runs and stored as JSON; it renders as the
proto's StepSummary / StepDetail. Paths are hierarchical: top-level steps "1", "2", ...; the
children of "1" are "1.0", "1.1", ... (shared semantics).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_scriptum._proto import scriptum_pb2 as pb

__all__ = ["StepRecord", "steps_from_json", "steps_to_json"]

MAX_LOGS_PER_STEP = 1000


@dataclass
class StepRecord:
    """One step. Times in ms since the epoch; `status` a StepStatus number."""

    path: str
    name: str
    primitive: str = "execute"
    tool: str = ""
    status: int = pb.STEP_STATUS_RUNNING
    started_at_ms: int = 0
    finished_at_ms: int = 0
    error: str = ""
    input_json: str = ""
    output_json: str = ""
    logs: list[str] = field(default_factory=list)

    def summary(self) -> pb.StepSummary:
        """The StepSummary of this record."""
        duration = self.finished_at_ms - self.started_at_ms if self.finished_at_ms else 0
        return pb.StepSummary(
            path=self.path,
            name=self.name,
            primitive=self.primitive,
            tool=self.tool,
            status=self.status,  # type: ignore[arg-type]
            started_at_ms=self.started_at_ms,
            finished_at_ms=self.finished_at_ms,
            duration_ms=max(0, duration),
            error=self.error,
        )

    def detail(self, *, with_output: bool = True) -> pb.StepDetail:
        """The StepDetail of this record (output_json left empty when `with_output` is false)."""
        return pb.StepDetail(
            summary=self.summary(),
            input_json=self.input_json,
            output_json=self.output_json if with_output else "",
            logs=self.logs,
        )

    def add_log(self, line: str) -> None:
        """Append a log line (at most MAX_LOGS_PER_STEP are kept)."""
        if len(self.logs) < MAX_LOGS_PER_STEP:
            self.logs.append(line)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepRecord:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


def _path_key(path: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in path.split("."))
    except ValueError:
        return (1 << 30,)


def steps_to_json(steps: Iterable[StepRecord]) -> str:
    """JSON text of records, in path order."""
    return json.dumps([asdict(step) for step in sorted(steps, key=lambda s: _path_key(s.path))])


def steps_from_json(text: str | bytes | None) -> list[StepRecord]:
    """Records from steps_to_json's text ("" / None = none)."""
    if not text:
        return []
    return [StepRecord.from_dict(item) for item in json.loads(text)]


def sort_steps(steps: Sequence[StepRecord]) -> list[StepRecord]:
    """Records in path order ("1" < "1.0" < "1.1" < "2" < "10")."""
    return sorted(steps, key=lambda s: _path_key(s.path))
