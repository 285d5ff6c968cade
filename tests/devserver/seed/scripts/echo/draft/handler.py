def handler(event, context):
    return {"version": "draft", "event": event}
