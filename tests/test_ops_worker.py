"""``renderlab worker`` in JSON mode: every line it writes (Celery's own included, no banner)
is one JSON object, and ``--metrics-port`` serves its processes' metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from renderlab import metrics_dir
from tests.api_helpers import free_socket
from tests.celery_helpers import REDIS_BROKER, kill, purge_queue, require_redis, unique_queue


def test_worker_logs_json_and_serves_its_metrics(pg_url: str, tmp_path: Path) -> None:
    require_redis()
    queue = unique_queue()
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {
        **os.environ,
        "RENDERLAB_DATA_DIR": str(tmp_path / "data"),
        "RENDERLAB_DATABASE_URL": pg_url,
        "RENDERLAB_BROKER_URL": REDIS_BROKER,
        "RENDERLAB_LOG_FORMAT": "json",
    }
    log = tmp_path / "worker.log"
    argv = [sys.executable, "-m", "renderlab", "worker", "--concurrency", "1", "--name",
            "ops@test", "--queues", queue, "--metrics-port", str(port)]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        scrape = _wait_for_metrics(f"http://127.0.0.1:{port}/metrics", process)
        assert scrape.status_code == 200
        assert scrape.headers["content-type"].startswith("text/plain")
        _wait_for_text(log, "ops@test ready.")
    finally:
        kill(process)
        purge_queue(REDIS_BROKER, queue)
    lines = log.read_text().splitlines()
    assert len(lines) >= 3  # at least Celery's connection, ready and reconciler lines
    for line in lines:
        record = json.loads(line)  # a plain line (the banner, a print) fails here
        assert {"ts", "level", "msg"} <= record.keys(), record
    assert metrics_dir.directory_for(tmp_path / "data", "worker-ops@test").is_dir()


def _wait_for_metrics(url: str, process: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the worker exited"
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the worker's metrics port did not answer within 60 s")


def _wait_for_text(path: Path, text: str) -> None:
    deadline = time.monotonic() + 30
    while text not in path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} not logged: {path.read_text()}"
        time.sleep(0.1)
