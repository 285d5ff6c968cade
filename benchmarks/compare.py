"""Old vs new: a Markdown table from ``run_all.py --json`` files (the same metrics, same machine).

    python benchmarks/compare.py --old OLD1.json [OLD2.json ...] --new NEW1.json [NEW2.json ...]

The samples of every file of a side are pooled (files of ``--only`` runs hold some benchmarks
only; a metric missing on either side is left out). Per metric: the median of each side, the
range of its samples (the noise of that measurement), and the change of the medians. A change is
beyond the noise only when the two sides' ranges do not overlap (every new sample worse, or
better, than every old one); with fewer than two samples on a side that cannot be said. Wall times
(a, b) are compared as ratios to the direct-stub baseline of the same run (the goals are stated
so, and a ratio cancels most of the machine's state at the time); (c) in seconds; (d) in runs per
second.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Metric:
    """One compared number: its label, its samples, and whether lower is better."""

    label: str
    samples: list[float]
    lower_is_better: bool = True

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def beyond_noise(self, other: Metric) -> str:
        """"worse" / "better" when this side's samples all lie beyond ``other``'s range, else "no"."""
        if min(len(self.samples), len(other.samples)) < 2:
            return "n/a (1 sample)"
        if min(self.samples) > max(other.samples):
            return "better" if not self.lower_is_better else "**worse**"
        if max(self.samples) < min(other.samples):
            return "**worse**" if not self.lower_is_better else "better"
        return "no (ranges overlap)"

    def text(self) -> str:
        return f"{self.median:.3f} ({min(self.samples):.3f}-{max(self.samples):.3f}, n={len(self.samples)})"


@dataclass
class Pooled:
    """Every sample of one side: wall times per variant, fail-fast runs, runs/s per thread count."""

    timings: dict[str, list[float]]
    fail_fast: list[dict[str, float]]
    rates: dict[str, list[float]]
    b_cases: int


def pool(results: list[dict[str, Any]]) -> Pooled:
    """One side's samples from its files (runs/s may be one number or a list per thread count)."""
    cases = {int(data["args"]["b_cases"]) for data in results}
    if len(cases) != 1:
        raise SystemExit(f"the files measured different (b) case counts: {sorted(cases)}")
    pooled = Pooled({}, [], {}, cases.pop())
    for data in results:
        for name, samples in data["timings"].items():
            pooled.timings.setdefault(name, []).extend(samples)
        for threads, rate in data["runs_per_s"].items():
            pooled.rates.setdefault(str(threads), []).extend(rate if isinstance(rate, list) else [rate])
        pooled.fail_fast.extend(data["fail_fast"])
    return pooled


def _ratio(name: str, base: str) -> Callable[[Pooled], list[float]]:
    """Per-run ratio of variant ``name`` to ``base``: sample i with sample i (same run, interleaved)."""
    return lambda p: [a / b for a, b in zip(p.timings[name], p.timings[base], strict=True)]


def _per_test_ms(name: str) -> Callable[[Pooled], list[float]]:
    return lambda p: [seconds / p.b_cases * 1000 for seconds in p.timings[name]]


# (label, samples of a side, lower is better)
METRICS: list[tuple[str, Callable[[Pooled], list[float]], bool]] = [
    ("(a) direct stub, serial, wall s", lambda p: p.timings["a.direct"], True),
    ("(a) plugin default (8) / direct", _ratio("a.plugin_default", "a.direct"), True),
    ("(a) plugin concurrency=50 / direct", _ratio("a.plugin_c50", "a.direct"), True),
    ("(a) plugin concurrency=1 / direct", _ratio("a.plugin_c1", "a.direct"), True),
    ("(a) plugin xdist -n 8 / direct", _ratio("a.xdist8_c1", "a.direct"), True),
    ("(b) direct stub, ms per test", _per_test_ms("b.direct"), True),
    ("(b) plugin concurrency=1, ms per test", _per_test_ms("b.plugin_c1"), True),
    ("(b) plugin concurrency=1 / direct (overhead)", _ratio("b.plugin_c1", "b.direct"), True),
    (
        "(c) fail-fast: failing result -> rollback applied, s",
        lambda p: [run["server_result_to_rollback_s"] for run in p.fail_fast],
        True,
    ),
    ("(d) server runs/s, 1 client thread", lambda p: p.rates["1"], False),
    ("(d) server runs/s, 8 client threads", lambda p: p.rates["8"], False),
]


def metrics(side: Pooled) -> dict[str, Metric]:
    """The metrics this side has samples for, by label."""
    found = {}
    for label, samples_of, lower_is_better in METRICS:
        try:
            samples = samples_of(side)
        except KeyError:
            continue
        if samples:
            found[label] = Metric(label, samples, lower_is_better)
    return found


def table(old: dict[str, Metric], new: dict[str, Metric]) -> str:
    lines = [
        "| metric | old: median (range, n) | new: median (range, n) | change of median | beyond noise |",
        "|---|---:|---:|---:|---|",
    ]
    for label in (label for label, _, _ in METRICS if label in old and label in new):
        before, after = old[label], new[label]
        change = after.median / before.median - 1.0
        lines.append(
            f"| {label} | {before.text()} | {after.text()} | {change:+.1%} | {after.beyond_noise(before)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--old", type=Path, nargs="+", required=True, help="run_all.py --json files, before")
    parser.add_argument("--new", type=Path, nargs="+", required=True, help="run_all.py --json files, after")
    args = parser.parse_args()
    old, new = ([json.loads(path.read_text()) for path in paths] for paths in (args.old, args.new))
    print(table(metrics(pool(old)), metrics(pool(new))))


if __name__ == "__main__":
    main()
