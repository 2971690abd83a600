"""What the synchronous and the asynchronous clients share: request bodies, and following
a render's event stream across dropped connections until it ends."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import ServerSentEvent

TERMINAL = frozenset({"complete", "failed"})
RECONNECT_FIRST_S = 0.25
RECONNECT_MAX_S = 5.0
# The server sends a keepalive every 15 s: a read this long without a byte is a dead stream.
STREAM_READ_TIMEOUT_S = 60.0
# Connection failures in a row (no event between them) before ``wait`` gives up and raises
# the last one: about two minutes of a server that does not answer at all.
MAX_FAILURES_IN_A_ROW = 30

Progress = Callable[[dict[str, Any]], None]


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "User-Agent": "renderlab-client/1"}


def render_body(
    animation_props: dict[str, Any], prompt: str | None, options: dict[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {"animation_props": animation_props, **options}
    if prompt is not None:
        body["prompt"] = prompt
    return body


def render_id_of(render_or_id: dict[str, Any] | str) -> str:
    return render_or_id["id"] if isinstance(render_or_id, dict) else render_or_id


def output_url(render: dict[str, Any]) -> str:
    url = render.get("output_url")
    if render.get("status") != "complete" or not url:
        raise ValueError(f"render {render.get('id')} is {render.get('status')}, not complete")
    return str(url)


def part_path(path: Path) -> Path:
    """Downloads land here first and are renamed when whole: no half file under ``path``."""
    return path.with_name(path.name + ".part")


class Follower:
    """The state of one ``wait``: the deadline, the reconnect backoff, the last render seen."""

    def __init__(self, render_id: str, on_progress: Progress | None, timeout: float | None):
        self.path = f"/v1/renders/{render_id}/events"
        self.on_progress = on_progress
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.delay = RECONNECT_FIRST_S
        self.last: dict[str, Any] | None = None
        self.failures = 0

    def read_timeout(self) -> httpx.Timeout:
        left = STREAM_READ_TIMEOUT_S if self.deadline is None else self.remaining()
        return httpx.Timeout(10.0, read=max(0.01, min(left, STREAM_READ_TIMEOUT_S)))

    def remaining(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def on_event(self, event: ServerSentEvent) -> dict[str, Any] | None:
        """The terminal render, once it arrives; None while it runs."""
        if event.event != "render":
            return None
        render = json.loads(event.data)
        self.last = render
        self.delay = RECONNECT_FIRST_S  # the stream worked: start the backoff over
        self.failures = 0
        if self.on_progress is not None:
            self.on_progress(render)
        return render if render.get("status") in TERMINAL else None

    def failed(self, error: Exception) -> None:
        """A connection failed or dropped: raise ``error`` once that has gone on too long."""
        self.failures += 1
        if self.failures >= MAX_FAILURES_IN_A_ROW and self.remaining() > 0:
            raise error

    def next_delay(self) -> float:
        """How long to wait before reconnecting; ``TimeoutError`` when the time is up."""
        if self.remaining() <= 0:
            status = self.last.get("status") if self.last else "unknown"
            raise TimeoutError(f"the render did not end in time (last status: {status})")
        delay = min(self.delay, max(0.0, self.remaining()))
        self.delay = min(self.delay * 2, RECONNECT_MAX_S)
        return delay
