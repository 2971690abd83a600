"""Helpers for the pipeline tests: real storage, real clocks where processes are involved,
reading renders back, waiting for them, and checking videos with ffprobe."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from renderlab import store
from renderlab.clock import Clock, now_ms
from renderlab.config import Settings, read_or_create_secret
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.models import Render, RenderStatus
from renderlab.pipeline.embedded import EmbeddedWorkers
from renderlab.quota import quota_status
from renderlab.services import STORAGE_SECRET_FILE, Services
from renderlab.storage import open_storage
from renderlab.store import RenderSnapshot
from tests.factories import make_generation, make_user

# Small, quick renders for most tests; a heavy one (a few seconds here) where a test must catch
# a render in the middle (cancel, kill, timeout). Large type over most of the frame: a title in
# a band of rows (render.band) and 150 characters at 72 px now take 0.6 s.
SMALL = {"width": 320, "height": 180}
QUICK_PROPS: dict[str, Any] = {"style": "fade-in", "duration_in_frames": 45}
HEAVY_PROPS: dict[str, Any] = {
    "style": "typewriter",
    "text": "A long line of text, typed one letter at a time, to keep the encoder busy. " * 3,
    "font_size": 160,
    "duration_in_frames": 600,
}
HEAVY_SIZE = {"width": 1920, "height": 1080}

# Short timings so that leases expire and reconcilers run within a test's patience.
FAST_LIMITS: dict[str, Any] = {
    "lease_ms": 1000,
    "pending_redispatch_ms": 1000,
    "render_timeout_ms": 30_000,
    # Many of these tests keep more than the default two renders of one user going at once.
    "max_concurrent_renders": 10,
}


def pipeline_services(
    settings: Settings,
    db: Database,
    limits: Limits,
    *,
    clock: Clock = now_ms,
    storage_url: str | None = None,
) -> Services:
    """Services over the test database with local storage signed by the data dir's secret
    (the same storage the embedded render processes build from ``settings``)."""
    if storage_url is not None:
        settings = settings.model_copy(update={"storage_url": storage_url})
    services = Services(settings=settings, limits=limits, db=db, clock=clock)
    secret = read_or_create_secret(settings.data_path, STORAGE_SECRET_FILE)
    storage = open_storage(
        settings.resolved_storage_url(), secret=secret, public_url=settings.resolved_public_url()
    )
    services.storage_factory = lambda: storage
    return services


def unwritable_storage_url(tmp_path: Path) -> str:
    """A storage root whose parent is a regular file: nothing can be created there, even by
    root (chmod would not stop root)."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where storage expects a folder")
    return (blocker / "storage").as_uri()


def read(db: Database, render_id: str) -> RenderSnapshot:
    """The render as stored now, detached from any session."""
    with db.read_one() as connection:
        return store.get(connection, render_id)


def full_row(db: Database, render_id: str) -> dict[str, Any]:
    """Every column of the render, pipeline bookkeeping included."""
    table = Render.__table__
    with db.read_one() as connection:
        row = connection.execute(select(table).where(table.c.id == render_id)).mappings().one()
    return dict(row)


def started(svc: Services, name: str = "alice", **props: object) -> tuple[str, str]:
    """A pending render of a new generation (``QUICK_PROPS`` with ``props`` over them) at
    ``SMALL`` size, started as a user would: ``(user id, render id)``."""
    from renderlab.pipeline.start import RenderRequest, start_render

    user = make_user(svc.db, name)
    generation = make_generation(svc.db, user, **{**QUICK_PROPS, **props})
    render, _ = start_render(svc, user, RenderRequest(generation, **SMALL))
    return user, render.id


def remaining_quota(services: Services, user_id: str) -> int:
    with services.db.session() as session:
        return quota_status(session, services.quota, user_id).remaining


def wait_for(condition: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test on timeout."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def wait_terminal(read: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.02) -> Any:
    """Poll ``read()`` (a snapshot, or a row as a dict) until the render is ``complete`` or
    ``failed``, and return what was read then; fail the test on timeout."""

    def terminal() -> Any:
        row = read()
        status = row["status"] if isinstance(row, dict) else row.status
        return row if RenderStatus(status).is_terminal else None

    return wait_for(terminal, timeout=timeout, interval=interval)


class ProgressWatcher:
    """Polls renders from the test and records every progress value it sees, in order."""

    def __init__(self, db: Database, render_ids: list[str]) -> None:
        self.db = db
        self.seen: dict[str, list[int]] = {render_id: [] for render_id in render_ids}

    def poll(self) -> dict[str, RenderSnapshot]:
        now = {render_id: read(self.db, render_id) for render_id in self.seen}
        for render_id, snapshot in now.items():
            self.seen[render_id].append(snapshot.progress)
        return now

    def until_finished(self, timeout: float = 60.0) -> dict[str, RenderSnapshot]:
        def finished() -> dict[str, RenderSnapshot] | None:
            now = self.poll()
            return now if all(s.is_terminal for s in now.values()) else None

        return wait_for(finished, timeout=timeout, interval=0.01)


@contextmanager
def embedded(services: Services, workers: int = 2) -> Iterator[EmbeddedWorkers]:
    """Embedded workers running for the block, as ``serve`` runs them."""
    pool = EmbeddedWorkers(services, workers)
    services.dispatcher = pool
    pool.start()
    try:
        yield pool
    finally:
        pool.stop(timeout=5.0)
        services.dispatcher = None


def ffprobe(path: Path) -> dict[str, Any]:
    """The video stream and container of ``path`` as ffprobe reads them (never skipped: a
    missing ffprobe fails the test)."""
    binary = shutil.which("ffprobe")
    assert binary, "ffprobe is required (apt-get install -y ffmpeg)"
    result = subprocess.run(
        [
            binary,
            "-v",
            "error",
            "-count_packets",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,pix_fmt,nb_read_packets,avg_frame_rate"
            ":format=format_name",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"ffprobe rejected {path}: {result.stderr}"
    data = json.loads(result.stdout)
    return {**data["streams"][0], "format_name": data["format"]["format_name"]}


def fetch_video(services: Services, snapshot: RenderSnapshot, dest: Path) -> Path:
    """Download a complete render's video from storage through its ``output_key``."""
    key = full_row(services.db, snapshot.id)["output_key"]
    assert key, f"render {snapshot.id} has no output_key"
    return services.storage.get_file(key, dest)


def non_decreasing(values: list[int]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(values))
