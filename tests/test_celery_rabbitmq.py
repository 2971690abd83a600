"""RabbitMQ instead of Redis, chosen by the broker URL alone: one ``renderlab worker`` over the
machine's RabbitMQ renders a chunked video end to end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from renderlab.config import Settings
from renderlab.limits import Limits
from renderlab.pipeline import chunked
from renderlab.pipeline.start import RenderRequest, start_render
from renderlab.services import build_services
from renderlab.workers.celery_app import make_celery
from renderlab.workers.dispatch import CeleryDispatcher
from tests.celery_helpers import AMQP_BROKER, kill, purge_queue, require_amqp, start_worker
from tests.celery_helpers import unique_queue as new_queue
from tests.factories import make_generation, make_user
from tests.pipeline_helpers import ffprobe, full_row, wait_terminal

LIMITS = {"RENDERLAB_CHUNK_FRAMES": "30", "RENDERLAB_LEASE_MS": "2000"}


@pytest.fixture
def queue() -> Iterator[str]:
    require_amqp()
    name = new_queue()
    yield name
    purge_queue(AMQP_BROKER, name)


def test_a_render_runs_in_chunks_over_rabbitmq(pg_url: str, tmp_path: Path, queue: str) -> None:
    storage_url = (tmp_path / "storage").as_uri()  # one machine: a folder is shared storage
    env = {
        **os.environ,
        **LIMITS,
        "RENDERLAB_DATA_DIR": str(tmp_path / "data"),
        "RENDERLAB_DATABASE_URL": pg_url,
        "RENDERLAB_BROKER_URL": AMQP_BROKER,
        "RENDERLAB_STORAGE_URL": storage_url,
    }
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=pg_url,
        broker_url=AMQP_BROKER,
        storage_url=storage_url,
    )
    limits = Limits(chunk_frames=30, lease_ms=2000)
    services = build_services(settings, limits)
    services.dispatcher = CeleryDispatcher(make_celery(settings, limits, queue=queue), services)
    worker = start_worker("rabbit", env, tmp_path, queue)
    try:
        user = make_user(services.db, "rabbit-user")
        generation = make_generation(services.db, user, style="slide-up", duration_in_frames=90)
        render, _ = start_render(services, user, RenderRequest(generation, 320, 180))

        row = wait_terminal(lambda: full_row(services.db, render.id), timeout=60, interval=0.05)
        assert row["status"] == "complete", row["error"]
        assert len(chunked.chunk_workers(services, render.id)) == 3
        probe = ffprobe(services.storage.get_file(row["output_key"], tmp_path / "out.mp4"))
        assert (probe["width"], probe["height"], int(probe["nb_read_packets"])) == (320, 180, 90)
    finally:
        kill(worker)
        services.db.dispose()
