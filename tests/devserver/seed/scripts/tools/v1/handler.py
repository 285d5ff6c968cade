"""A test handler whose behaviour the event chooses: echo, fail, sleep, barrier, env, steps."""

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
    if op == "barrier":
        # Arrive, then wait until `count` runs have arrived: proves they were all in flight at once.
        open(os.path.join(event["dir"], str(event["i"])), "w").close()
        deadline = time.monotonic() + 60
        while len(os.listdir(event["dir"])) < event["count"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(os.listdir(event['dir']))} of {event['count']} runs arrived")
            time.sleep(0.01)
        return {"arrived": event["i"]}
    if op == "env":
        return {"keys": sorted(os.environ)}
    if op == "steps":
        with context.step("parse"):
            pass
        with context.step("explode"):
            raise RuntimeError("step failed")
    raise ValueError(f"unknown op {op!r}")
