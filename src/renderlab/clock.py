"""Wall-clock time in epoch milliseconds, the unit the seed stored and the limiter speaks."""

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], int]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ms_to_datetime(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def ms_to_rfc3339(value: int | None) -> str | None:
    moment = ms_to_datetime(value)
    return (
        None if moment is None else moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
