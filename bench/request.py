"""Request -> complete over HTTP on the embedded default, against ffmpeg drawtext in the same run.

    .venv/bin/python bench/request.py               # 1080p/600-frame fade-in, 5 renders
    .venv/bin/python bench/request.py --repeat 3

A real ``renderlab serve`` (fresh data dir, SQLite, local storage, embedded workers, as the
README starts it) gets ``POST /v1/renders`` of a stored generation; the client then reads
``GET /v1/renders/{id}`` every 5 ms until it is terminal. Each render has its own text, so the
output cache never answers (``bench/cache.py`` measures that). The reference is ffmpeg
``drawtext`` + libx264 ``veryfast`` of the same picture (``bench/render.py``). Target: at most
0.12x.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from render import _ffmpeg, _ffmpeg_once, _render_once  # noqa: E402
from renderlab.render import DEFAULT_CRF  # noqa: E402

FADE_IN = {
    "style": "fade-in",
    "font_size": 72,
    "color": "#FFFFFF",
    "duration_in_frames": 600,
}
FULL_HD = {"width": 1920, "height": 1080}
TARGET = 0.12
_OUTSIDE = ("RENDERLAB_DATABASE_URL", "RENDERLAB_STORAGE_URL", "RENDERLAB_BROKER_URL")


@dataclass
class Served:
    client: httpx.Client
    token: str
    database: Path
    pid: int
    """The ``renderlab serve`` process (its API runs in it)."""

    def stamps(self, render_id: str) -> tuple[int, int, int]:
        """(created_at, started_at, completed_at) of the render, in ms, as the server wrote
        them (read from its SQLite file: started_at is not in the render object)."""
        with sqlite3.connect(self.database) as connection:
            row = connection.execute(
                "SELECT created_at, started_at, completed_at FROM renders WHERE id = ?",
                (render_id,),
            ).fetchone()
        return row[0], row[1] or row[0], row[2]


@dataclass
class Timing:
    render_id: str
    total: float
    """``POST /v1/renders`` sent -> the client read ``complete``, seconds."""
    answered: float
    """``POST /v1/renders`` sent -> its answer read."""
    sent_ms: float
    seen_ms: float
    """Wall-clock ms of sending the request and of reading it complete."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(**env: str) -> Iterator[Served]:
    """``renderlab serve`` in a fresh data dir, with a client and a token for "bench"."""
    with tempfile.TemporaryDirectory(prefix="renderlab-bench-") as data:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(_OUTSIDE)}
        environ.update(
            RENDERLAB_DATA_DIR=data,
            RENDERLAB_AUTH="dev",
            RENDERLAB_RENDERS_PER_HOUR="100000",
            **env,
        )
        port = _free_port()
        cli = [sys.executable, "-m", "renderlab"]
        process = subprocess.Popen(
            [*cli, "serve", "--port", str(port), "--no-access-log"],
            env=environ,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            token = subprocess.run(
                [*cli, "token", "bench"], env=environ, check=True, capture_output=True, text=True
            ).stdout.strip()
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=60) as client:
                _wait_healthy(client, process)
                yield Served(client, token, Path(data) / "renderlab.db", process.pid)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_healthy(client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("renderlab serve exited")
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit("renderlab serve did not come up")


def request_to_complete(bench: Served, body: dict[str, Any]) -> Timing:
    """Time ``POST /v1/renders`` -> reading it ``complete``. ``body`` has ``animation_props``:
    its generation is stored first, outside the measured time."""
    client, headers = bench.client, {"Authorization": f"Bearer {bench.token}"}
    props = body["animation_props"]
    created = client.post("/v1/generations", json={"animation_props": props}, headers=headers)
    assert created.status_code == 201, created.text
    request = {k: v for k, v in body.items() if k != "animation_props"}
    request["generation_id"] = created.json()["id"]
    sent_ms, started = time.time() * 1000, time.perf_counter()
    answer = client.post("/v1/renders", json=request, headers=headers)
    answered = time.perf_counter() - started
    assert answer.status_code in (201, 202), answer.text
    render = answer.json()
    while render["status"] not in ("complete", "failed"):
        time.sleep(0.005)
        render = client.get(f"/v1/renders/{render['id']}", headers=headers).json()
    total, seen_ms = time.perf_counter() - started, time.time() * 1000
    assert render["status"] == "complete", render
    return Timing(render["id"], total, answered, sent_ms, seen_ms)


def breakdown(bench: Served, timings: list[Timing]) -> dict[str, float]:
    """Median seconds of each leg of request -> complete."""
    legs: dict[str, list[float]] = {name: [] for name in LEGS}
    for timing in timings:
        created, claimed, completed = bench.stamps(timing.render_id)
        legs["POST answered"].append(timing.answered)
        legs["created -> claimed"].append((claimed - created) / 1000)
        legs["claimed -> complete"].append((completed - claimed) / 1000)
        legs["complete -> client saw it"].append((timing.seen_ms - completed) / 1000)
        legs["total"].append(timing.total)
    return {name: statistics.median(values) for name, values in legs.items()}


LEGS = (
    "POST answered",
    "created -> claimed",
    "claimed -> complete",
    "complete -> client saw it",
    "total",
)


def fade_in(index: int) -> dict[str, Any]:
    """A fresh 1080p/600-frame fade-in (its own text: never an output-cache hit)."""
    props = {**FADE_IN, "text": f"Hello from renderlab {index}"}
    return {"animation_props": props, **FULL_HD}


def _list(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ffmpeg = _ffmpeg()
    with tempfile.TemporaryDirectory() as out:
        reference = [
            _ffmpeg_once(ffmpeg, Path(out) / f"ref{i}.mp4", DEFAULT_CRF, "veryfast")[0]
            for i in range(args.repeat)
        ]
        core = [_render_once("fade-in", Path(out) / f"core{i}.mp4")["wall"] for i in range(3)]
    with served() as bench:
        request_to_complete(bench, fade_in(-1))  # the first render of a serve
        timings = [request_to_complete(bench, fade_in(i)) for i in range(args.repeat)]
        legs = breakdown(bench, timings)
    ref, ours = statistics.median(reference), legs["total"]
    print(f"ffmpeg drawtext veryfast  median {ref:6.3f} s  ({_list(reference)})")
    print(f"request -> complete       median {ours:6.3f} s  ({_list([t.total for t in timings])})")
    print(
        f"renderer alone (render_video, timed in a fresh process) {statistics.median(core):.3f} s"
    )
    for name in LEGS[:-1]:
        print(f"  {name:<28} {legs[name] * 1000:7.1f} ms")
    print(f"ratio {ours / ref:.3f}x (target <= {TARGET}x)")


if __name__ == "__main__":
    main()
