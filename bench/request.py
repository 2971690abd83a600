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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from render import _ffmpeg, _ffmpeg_once  # noqa: E402
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(**env: str) -> Iterator[tuple[httpx.Client, str]]:
    """``renderlab serve`` in a fresh data dir: (a client on it, a token for "bench")."""
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
                yield client, token
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


def request_to_complete(client: httpx.Client, token: str, body: dict[str, Any]) -> float:
    """Seconds from sending ``POST /v1/renders`` to reading it ``complete``. ``body`` has
    ``animation_props``: its generation is stored first, outside the measured time."""
    headers = {"Authorization": f"Bearer {token}"}
    props = body["animation_props"]
    created = client.post("/v1/generations", json={"animation_props": props}, headers=headers)
    assert created.status_code == 201, created.text
    request = {k: v for k, v in body.items() if k != "animation_props"}
    request["generation_id"] = created.json()["id"]
    started = time.perf_counter()
    answer = client.post("/v1/renders", json=request, headers=headers)
    assert answer.status_code in (201, 202), answer.text
    render = answer.json()
    while render["status"] not in ("complete", "failed"):
        time.sleep(0.005)
        render = client.get(f"/v1/renders/{render['id']}", headers=headers).json()
    elapsed = time.perf_counter() - started
    assert render["status"] == "complete", render
    return elapsed


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
    with served() as (client, token):
        request_to_complete(client, token, fade_in(-1))  # the first render warms the pool
        times = [request_to_complete(client, token, fade_in(i)) for i in range(args.repeat)]
    ref, ours = statistics.median(reference), statistics.median(times)
    print(f"ffmpeg drawtext veryfast  median {ref:6.3f} s  ({_list(reference)})")
    print(f"request -> complete       median {ours:6.3f} s  ({_list(times)})")
    print(f"ratio {ours / ref:.3f}x (target <= {TARGET}x)")


if __name__ == "__main__":
    main()
