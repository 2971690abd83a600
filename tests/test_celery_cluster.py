"""Cluster mode end to end: real PostgreSQL, Redis, an S3 server on loopback and two
``renderlab worker`` processes. A 600-frame render fans out into chunks that both workers
encode; SIGKILL of a worker mid-render still ends the render, never leaves it stuck."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import redis
from sqlalchemy import select

from renderlab.config import Settings
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.models import RenderChunk
from renderlab.pipeline import chunked
from renderlab.pipeline.failures import WORKER_LOST
from renderlab.pipeline.start import RenderRequest, start_render
from renderlab.services import Services, build_services
from renderlab.workers.celery_app import make_celery
from renderlab.workers.dispatch import CeleryDispatcher
from tests.conftest import truncate_all
from tests.factories import make_generation, make_user
from tests.pipeline_helpers import ffprobe, full_row, wait_for
from tests.s3_server import S3_TEST_CREDENTIALS

BROKER = "redis://127.0.0.1:6379/13"
LIMITS = {
    "RENDERLAB_RENDER_TIMEOUT_MS": "30000",
    "RENDERLAB_LEASE_MS": "2000",
    "RENDERLAB_PENDING_REDISPATCH_MS": "2000",
    "RENDERLAB_CHUNK_FRAMES": "75",
}
LONG_TEXT = "Chunks travel through S3 and are joined without re-encoding. " * 8


@pytest.fixture
def cluster(pg_url: str, s3_server: str, tmp_path: Path) -> Iterator[tuple[Services, dict]]:
    client = redis.Redis.from_url(BROKER)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {BROKER} is not reachable: {exc}")
    truncate_all(pg_url)
    bucket = f"renderlab-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3", endpoint_url=s3_server, region_name="us-east-1", **_boto_credentials()
    ).create_bucket(Bucket=bucket)
    env = {
        **os.environ,
        **S3_TEST_CREDENTIALS,
        **LIMITS,
        "RENDERLAB_DATA_DIR": str(tmp_path / "data"),
        "RENDERLAB_DATABASE_URL": pg_url,
        "RENDERLAB_BROKER_URL": BROKER,
        "RENDERLAB_STORAGE_URL": f"s3://{bucket}",
        "RENDERLAB_S3_ENDPOINT_URL": s3_server,
    }
    saved = {k: os.environ.get(k) for k in S3_TEST_CREDENTIALS}
    os.environ.update(S3_TEST_CREDENTIALS)
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=pg_url,
        broker_url=BROKER,
        storage_url=f"s3://{bucket}",
        s3_endpoint_url=s3_server,
    )
    limits = Limits(**{k.removeprefix("RENDERLAB_").lower(): int(v) for k, v in LIMITS.items()})
    services = build_services(settings, limits)
    services.dispatcher = CeleryDispatcher(make_celery(settings, limits), services)
    workers = {name: _start_worker(name, env, tmp_path) for name in ("w1", "w2")}
    try:
        yield services, workers
    finally:
        for process in workers.values():
            _kill(process)
        services.db.dispose()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def _start_worker(name: str, env: dict[str, str], tmp_path: Path) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "renderlab",
            "worker",
            "--concurrency",
            "1",
            "--name",
            f"{name}@test",
            "--loglevel",
            "WARNING",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _start(services: Services, **props: object) -> str:
    user = make_user(services.db)
    generation = make_generation(
        services.db, user, style="typewriter", text=LONG_TEXT, duration_in_frames=600, **props
    )
    render, _ = start_render(services, user, RenderRequest(generation, 1280, 720))
    return render.id


def _status(db: Database, render_id: str) -> dict:
    return full_row(db, render_id)


def test_chunks_run_on_both_workers_and_join(cluster, tmp_path: Path) -> None:
    services, _workers = cluster
    render_id = _start(services)
    seen: list[int] = []

    def finished() -> dict | None:
        row = _status(services.db, render_id)
        seen.append(row["progress"])
        return row if row["status"] in ("complete", "failed") else None

    row = wait_for(finished, timeout=90, interval=0.05)
    assert row["status"] == "complete", row["error"]
    assert seen == sorted(seen), "progress went down"
    owners = chunked.chunk_workers(services, render_id)
    assert len(owners) >= 4
    assert {owner.split("@")[0] for owner in owners.values() if owner} == {"w1", "w2"}
    video = services.storage.get_file(row["output_key"], tmp_path / "out.mp4")
    probe = ffprobe(video)
    assert (probe["width"], probe["height"], int(probe["nb_read_packets"])) == (1280, 720, 600)
    assert not services.storage.exists(chunked.segment_key(render_id, 0)), "segments kept"


def test_killed_worker_never_leaves_the_render_stuck(cluster) -> None:
    services, workers = cluster
    render_id = _start(services, font_size=96)

    def a_chunk_on_w1() -> bool:
        with services.db.session() as session:
            owners = session.execute(
                select(RenderChunk.lease_owner).where(
                    RenderChunk.render_id == render_id, RenderChunk.status == "rendering"
                )
            ).scalars()
            return any(owner and owner.startswith("w1@") for owner in owners)

    wait_for(a_chunk_on_w1, timeout=60, interval=0.01)
    killed_at = time.monotonic()
    _kill(workers["w1"])

    def finished() -> dict | None:
        row = _status(services.db, render_id)
        return row if row["status"] in ("complete", "failed") else None

    timeout_s = services.limits.render_timeout_ms / 1000
    row = wait_for(finished, timeout=2 * timeout_s, interval=0.1)
    assert time.monotonic() - killed_at < 2 * timeout_s
    assert row["status"] == "complete" or row["error"] == WORKER_LOST, row
    if row["status"] == "complete":
        owners = chunked.chunk_workers(services, render_id)
        assert any(owner and owner.startswith("w2@") for owner in owners.values())
