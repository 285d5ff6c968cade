"""A test handler whose behaviour the event chooses (see tests/devserver)."""

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
    if op == "wait_file":
        # Run until the test creates the file: lets a test hold a thread RUNNING without sleeping.
        with context.step("waiting"):
            while not os.path.exists(event["path"]):
                time.sleep(0.01)
        return {"released": True}
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
        return {"keys": sorted(context.env), "os_keys": sorted(os.environ), "values": dict(context.env)}
    if op == "steps":
        with context.step("parse"):
            context.log("parsing")
            with context.step("tokenize") as step:
                step.output({"tokens": 3})
            with context.step("validate"):
                with context.step("deep"):
                    pass
        with context.step("explode"):
            raise RuntimeError("step failed")
    if op == "nested":
        with context.step("outer"):
            with context.step("a"):
                pass
            with context.step("b"):
                pass
        with context.step("second"):
            pass
        return {"ok": True}
    if op == "yield":
        while "gate" in event and not os.path.exists(event["gate"]):
            time.sleep(0.01)  # held until the test has subscribed
        for i in range(event.get("n", 3)):
            context.yield_({"i": i})
        return {"yielded": event.get("n", 3)}
    if op == "big":
        return {"blob": "x" * event["bytes"]}
    if op == "ask":
        with context.step("prepare"):
            pass
        decision = context.ask("Approve", prompt="Approve it?", type="text", options=["approve", "reject"])
        with context.step("finish"):
            pass
        return {"decision": decision}
    if op == "ask2":
        first = context.ask("Amount", prompt="How much?", type="number")
        second = context.ask("Sure", prompt="Sure?", type="boolean")
        return {"amount": first, "sure": second}
    if op == "tool":
        return context.tool("echo", word=event.get("word", "hi"))
    if op == "not_json":
        return {1, 2}
    if op == "setenv":
        os.environ["LEAKED"] = "1"
        return {"ok": True}
    if op == "chdir":
        os.chdir("/")
        return {"ok": True}
    if op == "syspath":
        import sys

        sys.path.append("/nowhere")
        return {"ok": True}
    if op == "import":
        import wave  # noqa: F401  (a module nothing else loads)

        return {"ok": True}
    if op == "thread":
        import threading

        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        return {"ok": True}
    if op == "signal":
        import signal

        signal.signal(signal.SIGUSR1, lambda *a: None)
        return {"ok": True}
    if op == "pid":
        return {"pid": os.getpid()}
    if op == "crash":
        os._exit(3)
    raise ValueError(f"unknown op {op!r}")
