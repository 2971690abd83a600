"""The event a receiver gets: ``{"type", "timestamp", "data": <render object>}``.

Its id (``msg_...``) is the Standard Webhooks ``webhook-id``: made once when the event is
enqueued and sent unchanged on every retry, so receivers can drop duplicates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from renderlab.clock import ms_to_rfc3339
from renderlab.ids import new_id

EVENT_TYPES = ("render.completed", "render.failed")


def new_event_id() -> str:
    return f"msg_{new_id()}"


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    timestamp: str
    data: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        """What is stored in the outbox and sent as the body."""
        return {"type": self.type, "timestamp": self.timestamp, "data": self.data}

    def body(self) -> bytes:
        """The exact bytes that are signed and sent (compact JSON, UTF-8)."""
        return json.dumps(self.payload(), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def of(cls, event_id: str, payload: dict[str, Any]) -> Event:
        """An event read back from the outbox."""
        return cls(event_id, payload["type"], payload["timestamp"], payload["data"])


def make_event(
    event_type: str, render: dict[str, Any], now_ms: int, event_id: str | None = None
) -> Event:
    """The event for a render that just ended; ``render`` is the API's render object."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    return Event(event_id or new_event_id(), event_type, ms_to_rfc3339(now_ms) or "", render)
