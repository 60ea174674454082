"""What the adapters share: timestamps and JSON-safe payloads."""

import datetime
import json


def now() -> str:
    """The current time as RFC 3339 (UTC)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def jsonable(value):
    """`value` if it is JSON, else its `str()` (tool inputs and outputs can be anything)."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)
