"""The long-lived objects one process shares: settings, limits, database, storage, quota.

Built once by whichever face starts the process (``serve``, a Celery worker, a test) and passed
down; nothing below reads the environment itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from renderlab.clock import Clock, now_ms
from renderlab.config import Settings
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.quota import make_quota
from renderlab.ratelimit import RateLimiter

if TYPE_CHECKING:
    from renderlab.storage import Storage


class Dispatcher(Protocol):
    """Hands a committed render to whoever runs renders (embedded pool or Celery)."""

    def dispatch(self, render_id: str) -> None: ...


@dataclass
class Services:
    settings: Settings
    limits: Limits
    db: Database
    storage_factory: Callable[[], Storage] | None = None
    dispatcher: Dispatcher | None = None
    clock: Clock = now_ms
    quota: RateLimiter = field(init=False)
    _storage: Storage | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.quota = make_quota(self.limits, self.clock)

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            if self.storage_factory is None:
                raise RuntimeError("no storage configured")
            self._storage = self.storage_factory()
        return self._storage
