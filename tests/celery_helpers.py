"""Helpers for the cluster-mode tests: real brokers, a queue of the test run's own, and
``renderlab worker`` processes.

Several test runs may share this machine's Redis and RabbitMQ at once, so every run gets a
queue name of its own (``rltest-<hex>``) and removes only its own keys and queues afterwards;
nothing is flushed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from kombu import Connection

REDIS_BROKER = os.environ.get("RENDERLAB_TEST_CELERY_REDIS_URL", "redis://127.0.0.1:6379/13")
AMQP_BROKER = os.environ.get("RENDERLAB_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def unique_queue() -> str:
    return f"rltest-{uuid.uuid4().hex[:12]}"


def require_redis(url: str = REDIS_BROKER) -> None:
    """Fail (never skip) when Redis is not reachable."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is not reachable: {exc}")


def require_amqp(url: str = AMQP_BROKER) -> None:
    """Fail (never skip) when RabbitMQ is not reachable."""
    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        pytest.fail(f"RabbitMQ at {url} is not reachable: {exc}")


def purge_queue(broker_url: str, queue: str) -> None:
    """Remove what this run left in the broker: its queue (every priority), its bindings, and
    its messages in Redis's table of unacknowledged deliveries."""
    if broker_url.startswith("redis"):
        client = redis.Redis.from_url(broker_url)
        for key in list(client.scan_iter(match=f"*{queue}*")):
            client.delete(key)
        for tag, raw in list(client.hscan_iter("unacked")):
            try:
                _message, _exchange, routing_key = json.loads(raw)
            except ValueError:
                continue
            if routing_key == queue:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
        return
    with Connection(broker_url, connect_timeout=3) as connection:
        channel = connection.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)


def start_worker(
    name: str, env: dict[str, str], log_dir: Path, queue: str
) -> subprocess.Popen[bytes]:
    """``renderlab worker`` with one render process, as a deployment would run it."""
    log = (log_dir / f"{name}.log").open("ab")  # a restart appends
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
            "--queues",
            queue,
            "--loglevel",
            "INFO",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(log_dir: Path, names: list[str], timeout: float = 60) -> None:
    """Until every named worker has logged that it consumes (so the work can spread)."""
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        pending = {
            name
            for name in pending
            if f"{name}@test ready." not in (log_dir / f"{name}.log").read_text(errors="replace")
        }
        time.sleep(0.1)
    assert not pending, f"workers {sorted(pending)} did not start; see {log_dir}"


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its render processes at once: no goodbye to the broker."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
