"""Drawing the next pictures while the encoder works on this one.

x264 and libvpx run outside the GIL (PyAV releases it around ``avcodec_send_frame``), so a
thread that lays out, rasterises and composites the next pictures meanwhile uses the core
the encoder leaves: on 2 cores the 100-character typewriter's render took 0.63-0.65 s instead
of 0.69 s (docs/performance.md); it is the drawing now that the encoder waits for. The
pictures come out in order; an error on either side stops both.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

DEPTH = 2  # pictures drawn ahead of the one being encoded


class _Failed(Generic[T]):
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def ahead(items: Iterable[T], depth: int = DEPTH) -> Iterator[T]:
    """``items``, produced by a helper thread up to ``depth`` ahead of the consumer.

    The producer must not reuse an object it yielded until ``depth + 2`` further items have
    been made (the consumer holds one; ``depth`` wait; the producer holds one ready).
    Closing the iterator early (an exception in the consumer) stops the producer.
    """
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
            return
        put(_DONE)

    worker = threading.Thread(target=produce, name="renderlab-draw", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
