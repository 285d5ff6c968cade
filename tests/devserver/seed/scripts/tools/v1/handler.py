"""A test handler whose behaviour the event chooses: echo, fail, sleep, env, steps."""

import os
import time


def handler(event, context):
    op = event.get("op", "echo")
    if op == "echo":
        return event
    if op == "fail":
        raise ValueError("bad total")
    if op == "sleep":
        time.sleep(event["seconds"])
        return {"slept": event["seconds"]}
    if op == "env":
        return {"keys": sorted(os.environ)}
    if op == "steps":
        with context.step("parse"):
            pass
        with context.step("explode"):
            raise RuntimeError("step failed")
    raise ValueError(f"unknown op {op!r}")
