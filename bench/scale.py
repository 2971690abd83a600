"""Cluster-mode throughput: renders per minute with 1 and 2 ``renderlab worker`` processes, and
one chunked render's latency on 1 vs 2 workers.

Everything is real: the machine's PostgreSQL (a scratch database, created and dropped), Redis
(a queue of this run's own in DB 12; only its keys are removed), a moto S3 server on loopback
that this script starts, and ``renderlab worker`` processes with one render process each.
Renders are 600 frames (the duration cap), typewriter by default, chunked at
``RENDERLAB_CHUNK_FRAMES`` (150: four chunks). Run:

    .venv/bin/python bench/scale.py [--renders 8] [--latency-runs 3] [--style typewriter]
                                    [--size 1280x720] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import redis
from sqlalchemy import create_engine, text

from renderlab.config import Settings
from renderlab.db import upgrade
from renderlab.limits import Limits
from renderlab.pipeline.start import RenderRequest, start_render
from renderlab.services import Services, build_services
from renderlab.store import create_generation, get, get_or_create_user
from renderlab.workers.celery_app import make_celery
from renderlab.workers.dispatch import CeleryDispatcher

ADMIN = os.environ.get("RENDERLAB_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1/postgres")
BROKER = os.environ.get("RENDERLAB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
TEXT = "Scale out: chunks on every worker, joined without re-encoding. "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=8, help="renders in the burst")
    parser.add_argument("--latency-runs", type=int, default=3)
    parser.add_argument("--style", default="typewriter")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--workers", default="1,2", help="worker process counts to measure")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    os.environ.update(CREDENTIALS)
    work = Path(tempfile.mkdtemp(prefix="renderlab-scale-"))
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = _spawn(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        work / "moto.log",
    )
    _wait_http(endpoint)
    results = []
    try:
        for workers in (int(n) for n in args.workers.split(",")):
            url = _database()
            try:
                result = _measure(url, endpoint, workers, args, width, height, work)
            finally:
                _drop(url)
            results.append(result)
            print(
                f"{workers} worker(s): {result['renders_per_minute']:.1f} renders/min "
                f"({args.renders} renders at once, slowest {result['burst_slowest_s']:.2f} s); "
                f"one chunked render: {result['latency_s']:.2f} s (median of "
                f"{args.latency_runs}; the machine busy {result['machine_cpu_s']:.2f} CPU s for "
                f"it, so no faster than {result['cpu_floor_s']:.2f} s on "
                f"{os.cpu_count()} cores)",
                flush=True,
            )
    finally:
        os.killpg(moto.pid, signal.SIGKILL)
    print(json.dumps({"size": args.size, "style": args.style, "results": results}))


def _measure(
    url: str,
    endpoint: str,
    workers: int,
    args: argparse.Namespace,
    width: int,
    height: int,
    work: Path,
) -> dict[str, float]:
    queue = f"rlbench-{uuid.uuid4().hex[:12]}"
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    settings = Settings(
        data_dir=work,
        database_url=url,
        broker_url=BROKER,
        storage_url=f"s3://{bucket}",
        s3_endpoint_url=endpoint,
    )
    limits = Limits(renders_per_hour=10_000, max_concurrent_renders=10_000)  # a burst at once
    env = {
        **os.environ,
        "RENDERLAB_RENDERS_PER_HOUR": "10000",
        "RENDERLAB_MAX_CONCURRENT_RENDERS": "10000",
        "RENDERLAB_DATABASE_URL": url,
        "RENDERLAB_BROKER_URL": BROKER,
        "RENDERLAB_STORAGE_URL": f"s3://{bucket}",
        "RENDERLAB_S3_ENDPOINT_URL": endpoint,
    }
    services = build_services(settings, limits)
    services.dispatcher = CeleryDispatcher(make_celery(settings, limits, queue=queue), services)
    procs = [
        _spawn(
            [
                *(sys.executable, "-m", "renderlab", "worker", "--concurrency", "1"),
                *("--name", f"b{i}@bench", "--queues", queue, "--loglevel", "WARNING"),
            ],
            work / f"{queue}-b{i}.log",
            env,
        )
        for i in range(workers)
    ]
    try:
        with services.db.transaction() as session:
            user = get_or_create_user(session, "bench|user").id
            props = {
                "text": TEXT * 2,
                "style": args.style,
                "color": "#FFFFFF",
                "background_color": "#101820",
                "duration_in_frames": 600,
            }
        colours = iter(range(1 << 24))

        def submit() -> str:
            # Each render its own colour: identical requests would be output-cache hits.
            with services.db.transaction() as session:
                own = {**props, "color": f"#{0xFFFFFF - next(colours):06X}"}
                generation = create_generation(session, user, own).id
            return _submit(services, user, generation, width, height)

        _wait([submit()], services, 300)  # warm-up: workers up, fonts and code loaded
        latencies, cpu = [], []
        for _ in range(args.latency_runs):
            started, busy = time.perf_counter(), machine_busy_s()
            _wait([submit()], services, 300)
            latencies.append(time.perf_counter() - started)
            cpu.append(machine_busy_s() - busy)
        started = time.perf_counter()
        ids = [submit() for _ in range(args.renders)]
        _wait(ids, services, 900)
        elapsed = time.perf_counter() - started
        return {
            "workers": workers,
            "renders_per_minute": args.renders / elapsed * 60,
            "burst_slowest_s": elapsed,
            "latency_s": statistics.median(latencies),
            # What the whole machine spent on one render (workers, PostgreSQL, Redis, S3, this
            # script): spread perfectly over every core, it cannot take less than this floor.
            "machine_cpu_s": statistics.median(cpu),
            "cpu_floor_s": statistics.median(cpu) / (os.cpu_count() or 1),
        }
    finally:
        _stop(procs)
        services.db.dispose()
        _purge(queue)


def machine_busy_s() -> float:
    """CPU seconds the machine has been busy (all cores, every process), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _submit(services: Services, user: str, generation: str, width: int, height: int) -> str:
    render, _ = start_render(services, user, RenderRequest(generation, width, height))
    return render.id


def _wait(ids: list[str], services: Services, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with services.db.session() as session:
            rows = [get(session, i) for i in ids]
            states = [(r.status, r.error) for r in rows]
        if all(status in ("complete", "failed") for status, _ in states):
            failed = [error for status, error in states if status == "failed"]
            if failed:
                raise SystemExit(f"{len(failed)} render(s) failed: {failed[0]}")
            return
        time.sleep(0.02)
    raise SystemExit("renders did not finish in time")


def _purge(queue: str) -> None:
    """Remove this run's queue, bindings and unacknowledged deliveries; nothing else."""
    client = redis.Redis.from_url(BROKER)
    for key in list(client.scan_iter(match=f"*{queue}*")):
        client.delete(key)
    for tag, raw in list(client.hscan_iter("unacked")):
        if json.loads(raw)[-1] == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Warm shutdown (the last acknowledgements reach the broker), then make sure."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # and any render process left in its group


def _spawn(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"moto did not start at {url}")


def _database() -> str:
    name = f"renderlab_scale_{uuid.uuid4().hex[:8]}"
    engine = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    return url


def _drop(url: str) -> None:
    engine = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    engine.dispose()


if __name__ == "__main__":
    main()
