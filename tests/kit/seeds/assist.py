"""The paired-baseline seed: ``assist`` v1-v3 good (v3 the rollback target) and v4 (the candidate,
active), both calling a model that needs ``OPENAI_API_KEY`` from the script's overlay. Without the
key both versions fail the same way (a revoked key, an outage); with it, v4 answers the cases
``REGRESSED`` lists wrongly. v3 kills its own worker on an input with ``"crash_baseline": true``
(the platform's failure, ``PLATFORM_RUNTIME_CRASH``), so a baseline error can be made on purpose.
"""

from __future__ import annotations

from pathlib import Path

from kit.seeds import write_seed

__all__ = ["CASES", "KEY", "REGRESSED", "SCRIPT", "write_assist_seed"]

SCRIPT = "assist"
KEY = "OPENAI_API_KEY"
CASES = ("q1", "q2", "q3", "q4", "q5")
REGRESSED = ("q1", "q2", "q3")

_HANDLER = """
import os

VERSION = {version}
REGRESSED = {regressed!r}


def handler(event, context):
    if VERSION == 3 and event.get("crash_baseline"):
        os._exit(3)  # the worker dies: the platform's failure, not the script's
    with context.step("llm"):
        if not context.env.get("OPENAI_API_KEY"):
            raise RuntimeError("401 from the model provider: OPENAI_API_KEY is not set")
        answer = event["n"] * 2
    if event["q"] in REGRESSED:
        answer += 1
    return {{"q": event["q"], "answer": answer, "version": VERSION}}
"""


def write_assist_seed(root: Path) -> Path:
    """assist v1-v3 (good) and v4 (regressed on ``REGRESSED``, active); the overlay holds the key."""
    return write_seed(
        root,
        script=SCRIPT,
        versions={
            **{v: _HANDLER.format(version=v, regressed=()) for v in (1, 2, 3)},
            4: _HANDLER.format(version=4, regressed=REGRESSED),
        },
        active=4,
        overlay={KEY: "sk-kit-fake-0000", "MODEL": "gpt-kit"},
    )
