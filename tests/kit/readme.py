"""Read README.md's code blocks and run them as written (issue 14: "Every README code block is
executed by a test").

Every block is fenced, and its info string says what it is:

- ```` ```LANG file=PATH ```` — a file of the project the README builds ("Your first smoke suite"):
  written under a scratch directory before anything runs.
- ```` ```console ```` (optionally ``in=PLACE``) — shell commands, each after
  ``$ `` (a trailing ``\\`` continues a command), each followed by the lines it must print. A line
  may hold ``...`` where the output varies (a path, a thread id); a line that is only ``...`` stands
  for any number of lines; lines must appear in order, others may come between. A command that
  prints ``exit code: N`` (the gate's summary) must exit with N; every other command must exit 0.
  ``in=tutorial`` (default): the README's own project; ``in=example``: a copy of
  ``example_suites/invoice_parser``; ``in=repo``: the repository itself (``setup``: the two
  commands at the top); ``in=endpoint``: a copy of the example suite with the exported platform
  variables pointed at a server started for the test; ``in=devserver``: the hand-started server
  and the calls made to it.
- ```` ```python run ```` — a Python snippet run in the tutorial project after its console blocks.
- ```` ```yaml ci=github ```` / ```` ```yaml ci=gitlab ```` — a CI recipe: parsed, and its pytest
  command run in a copy of the example suite against a server started for it.
- ```` ```yaml ci=github-sharded ```` / ```` ```yaml ci=gitlab-sharded ```` — a sharded gate's
  recipe: every shard job's commands, then the merge job's, against one server.
- ```` ```text module-map ```` — the module map, checked by ``test_layout.py``.

A block of any other kind, or an indented (unfenced) code block, fails
``tests/layout/test_readme.py``: nothing in the README goes unchecked.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from kit.constants import REPO

README = REPO / "README.md"

_FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
KINDS = ("file", "console", "python run", "ci", "ci-sharded", "module-map")


@dataclass(frozen=True)
class Block:
    """One fenced block: its README line (1-based, the opening fence), language, attributes, text."""

    line: int
    lang: str
    attrs: dict[str, str]
    flags: tuple[str, ...]
    body: str

    @property
    def kind(self) -> str:
        if "file" in self.attrs:
            return "file"
        if self.lang == "console":
            return "console"
        if self.lang == "python" and self.flags == ("run",):
            return "python run"
        if self.lang == "yaml" and self.attrs.get("ci", "").endswith("-sharded"):
            return "ci-sharded"
        if self.lang == "yaml" and "ci" in self.attrs:
            return "ci"
        if self.lang == "text" and self.flags == ("module-map",):
            return "module-map"
        return f"unknown ({self.lang} {' '.join(self.flags)})".strip()

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"


def blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of the README, in order."""
    text = README.read_text(encoding="utf-8") if text is None else text
    found = []
    for match in _FENCE.finditer(text):
        words = match.group("info").split()
        lang = words[0] if words else ""
        attrs = dict(word.split("=", 1) for word in words[1:] if "=" in word)
        flags = tuple(word for word in words[1:] if "=" not in word)
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(line, lang, attrs, flags, match.group("body")))
    return found


def indented_code_lines(text: str | None = None) -> list[int]:
    """Lines (1-based) of indented code blocks outside fences: a 4-space-indented line after a blank
    line, not continuing a list item (our lists continue with 2 spaces)."""
    text = README.read_text(encoding="utf-8") if text is None else text
    found, in_fence, previous = [], False, ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and line.startswith("    ") and line.strip() and not previous.strip():
            found.append(number)
        previous = line
    return found


@dataclass
class Command:
    """A ``$`` command of a console block and the output lines it must print."""

    line: int
    text: str
    expected: list[str] = field(default_factory=list)

    @property
    def expected_exit(self) -> int:
        for line in self.expected:
            match = re.fullmatch(r"exit code: (\d+)", line.strip())
            if match:
                return int(match.group(1))
        return 0

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)


def commands(block: Block) -> list[Command]:
    """The commands of a console block (continuations joined), with their expected lines."""
    found: list[Command] = []
    continuing = False
    for offset, raw in enumerate(block.body.splitlines(), 1):
        line = raw.rstrip()
        if continuing:
            found[-1].text += " " + line.rstrip("\\").strip()
            continuing = line.endswith("\\")
        elif line.startswith("$ "):
            found.append(Command(block.line + offset, line[2:].rstrip("\\").strip()))
            continuing = line.endswith("\\")
        elif found:
            found[-1].expected.append(line)
        elif line.strip():
            raise AssertionError(f"{block.where}: output before the first '$ ' command: {line!r}")
    return found


def _pattern(expected: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in expected.strip().split("...")]
    return re.compile(".*".join(parts))


def missing_lines(expected: list[str], output: str) -> list[str]:
    """The expected lines not found, in order, among the output's lines ([] when all are there)."""
    # pytest's banners ("==== 3 failed, 2 passed in 1.2s ====") are matched without their rules.
    lines = [line.strip().strip("=").strip() for line in output.splitlines()]
    position = 0
    for wanted in expected:
        if wanted.strip() in ("", "..."):
            continue
        pattern = _pattern(wanted)
        while position < len(lines) and not pattern.fullmatch(lines[position]):
            position += 1
        if position == len(lines):
            return [wanted]
        position += 1
    return []


def tutorial_files(all_blocks: list[Block]) -> dict[str, str]:
    """PATH -> text of every ``file=`` block; a path given twice is a README mistake."""
    files: dict[str, str] = {}
    for block in all_blocks:
        if block.kind == "file":
            path = block.attrs["file"]
            assert path not in files, f"{block.where}: {path} is written twice"
            assert not Path(path).is_absolute() and ".." not in Path(path).parts, block.where
            files[path] = block.body
    return files
