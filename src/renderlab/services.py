"""The long-lived objects one process shares: settings, limits, database, storage, quota.

Built once by whichever face starts the process (``serve``, a Celery worker, a test) and passed
down; nothing below reads the environment itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from renderlab.clock import Clock, now_ms
from renderlab.config import Settings, read_or_create_secret
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.quota import make_quota
from renderlab.ratelimit import RateLimiter

if TYPE_CHECKING:
    from renderlab.storage import Storage


class Dispatcher(Protocol):
    """Hands a committed render to whoever runs renders (embedded pool or Celery)."""

    def dispatch(self, render_id: str) -> None: ...


@runtime_checkable
class Canceller(Protocol):
    """A dispatcher that can stop a running render at once (the embedded pool kills its process).

    Optional: cancellation is recorded in the database first, and every worker notices it at
    its next progress write; this only makes the stop immediate where the dispatcher can.
    """

    def cancel(self, render_id: str) -> None: ...


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


STORAGE_SECRET_FILE = "storage-secret"


def build_services(
    settings: Settings, limits: Limits, *, dispatcher: Dispatcher | None = None
) -> Services:
    """The services of one process, from its settings: what ``serve``, a worker and each
    embedded render process call (each builds its own engine: engines never cross processes).

    Storage is opened here rather than on first use so that a malformed
    ``RENDERLAB_STORAGE_URL`` is a ``ValueError`` at start, not a failed render later. Opening
    touches neither disk nor network. The signing secret is only needed (and only created in
    the data dir) for local storage: S3 signs with its own credentials.
    """
    from renderlab.storage import open_storage

    storage_url = settings.resolved_storage_url()
    if settings.storage_secret:
        secret = settings.storage_secret.encode()
    elif storage_url.startswith("file:"):
        secret = read_or_create_secret(settings.data_path, STORAGE_SECRET_FILE)
    else:
        secret = b"unused-by-s3"
    storage = open_storage(
        storage_url,
        secret=secret,
        public_url=settings.resolved_public_url(),
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
    )
    return Services(
        settings=settings,
        limits=limits,
        db=Database(settings.resolved_database_url()),
        storage_factory=lambda: storage,
        dispatcher=dispatcher,
    )
