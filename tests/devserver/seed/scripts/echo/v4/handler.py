def handler(event, context):
    return {"version": 4, "event": event}
