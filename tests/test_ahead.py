"""render.ahead: pictures drawn in a helper thread, handed over in order, errors kept."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from renderlab.render.ahead import ahead


def test_items_arrive_in_order_from_another_thread() -> None:
    threads: list[str] = []

    def numbers() -> Iterator[int]:
        for i in range(50):
            threads.append(threading.current_thread().name)
            yield i

    assert list(ahead(numbers())) == list(range(50))
    assert set(threads) == {"renderlab-draw"}


def test_an_error_while_drawing_is_raised_to_the_consumer_after_what_came_before() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad glyph")

    seen: list[int] = []
    with pytest.raises(ValueError, match="bad glyph"):
        for item in ahead(failing()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_consumer_that_stops_stops_the_producer() -> None:
    made: list[int] = []

    def endless() -> Iterator[int]:
        i = 0
        while True:
            made.append(i)
            yield i
            i += 1

    with pytest.raises(RuntimeError):
        for item in ahead(endless(), depth=2):
            if item == 3:
                raise RuntimeError("encoder failed")
    assert not any(t.name == "renderlab-draw" for t in threading.enumerate())
    assert len(made) <= 3 + 1 + 2 + 1  # at most depth + 2 beyond the one being consumed
