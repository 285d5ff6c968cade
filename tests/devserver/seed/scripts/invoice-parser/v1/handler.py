VERSION = 1


def handler(event, context):
    with context.step("parse"):
        for name in ("header", "lines", "totals"):
            with context.step(name):
                pass
        with context.step("tax"):
            with context.step("rate") as step:
                step.output({"rate": 0.2, "model": context.env.get("MODEL", "")})
    return {"version": VERSION, "invoice": event.get("invoice", ""), "total_cents": 1200}
