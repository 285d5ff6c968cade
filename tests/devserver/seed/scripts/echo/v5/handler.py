def handler(event, context):
    return {"version": 5, "event": event}
