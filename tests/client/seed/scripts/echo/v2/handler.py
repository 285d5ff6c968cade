"""echo v2: returns its event and the REGION it sees.

{"fail": true} raises; {"sleep_s": N} waits N seconds first; {"nested": true} records steps 1, 1.0,
1.1 and 2; {"big_mib": N} returns N MiB of output; {"ask": true} pauses on an ask.
"""

import time

VERSION = 2


def handler(event, context):
    event = event if isinstance(event, dict) else {"value": event}
    if event.get("nested"):
        with context.step("outer"):
            with context.step("inner-a"):
                pass
            with context.step("inner-b"):
                pass
        with context.step("last"):
            return {"version": VERSION, "echo": event, "region": context.env.get("REGION")}
    if event.get("ask"):
        answer = context.ask("approve", prompt="ship it?", type="text", options=["yes", "no"])
        return {"version": VERSION, "echo": event, "region": answer}
    with context.step("echo"):
        if event.get("sleep_s"):
            time.sleep(float(event["sleep_s"]))
        if event.get("fail"):
            raise ValueError("asked to fail")
        if event.get("big_mib"):
            return {"version": VERSION, "blob": "x" * int(event["big_mib"] * 1024 * 1024)}
        return {"version": VERSION, "echo": event, "region": context.env.get("REGION")}
