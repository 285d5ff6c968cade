"""echo v2: returns its event; {"fail": true} raises, {"sleep_s": N} waits N seconds first."""

import os
import time

VERSION = 2


def handler(event, context):
    with context.step("echo"):
        if isinstance(event, dict) and event.get("sleep_s"):
            time.sleep(float(event["sleep_s"]))
        if isinstance(event, dict) and event.get("fail"):
            raise ValueError("asked to fail")
        return {"version": VERSION, "echo": event, "region": os.environ.get("REGION")}
