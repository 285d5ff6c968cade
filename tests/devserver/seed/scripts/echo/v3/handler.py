def handler(event, context):
    return {"version": 3, "event": event}
