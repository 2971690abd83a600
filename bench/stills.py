"""One user's flood of still previews against another user's requests, with and without the
bound on stills drawn at once (``RENDERLAB_STILLS_AT_ONCE``), in one run.

    .venv/bin/python bench/stills.py
    .venv/bin/python bench/stills.py --flood 40 --rounds 3

Each phase starts a fresh ``renderlab serve`` (a real subprocess, SQLite, embedded workers
idle). User A sends ``--flood`` heavy 1080p stills at once (``--rounds`` times); meanwhile user
B asks ``GET /v1/quota`` over and over, one request at a time, and we keep B's latencies. The
API process's peak RSS (``VmHWM``) is read at the end of the phase. Phases:

* ``idle``: B alone, the reference.
* ``unbounded``: ``RENDERLAB_STILLS_AT_ONCE=1000`` (every still drawn at once, as before).
* ``bounded``: the default (the core count).

The per-minute limit is raised for the run so that the flood measures the bound, not the
token bucket (which would refuse the flood beyond 60 a minute). On a machine shared with other
work the absolute figures move; the ratios against ``idle`` of the same run are the result.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.serve_helpers import serve  # noqa: E402  (a real serve, as the tests start it)

HEAVY = {
    "animation_props": {
        "text": "Every still of this flood is a full 1080p frame of large, scaled text. " * 3,
        "style": "scale",
        "font_size": 200,
        "color": "#FFFFFF",
        "background_color": "#101820",
        "duration_in_frames": 600,
    },
    "frame": 300,
    "width": 1920,
    "height": 1080,
}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def token(client: httpx.Client, name: str) -> dict[str, str]:
    answer = client.post("/v1/auth/token", json={"name": name})
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def run_phase(name: str, flood: int, rounds: int, env: dict[str, str]) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory() as data,
        serve(Path(data), RENDERLAB_STILLS_PER_MINUTE="100000", **env) as server,
        httpx.Client(base_url=server.base, timeout=120) as client,
    ):
        alice, bob = token(client, "alice"), token(client, "bob")
        client.post("/v1/stills", json={**HEAVY, "width": 320, "height": 180}, headers=alice)
        done = threading.Event()
        latencies: list[float] = []

        def watch() -> None:
            with httpx.Client(base_url=server.base, timeout=120) as own:
                while not done.is_set():
                    started = time.perf_counter()
                    assert own.get("/v1/quota", headers=bob).status_code == 200
                    latencies.append(time.perf_counter() - started)

        watcher = threading.Thread(target=watch)
        watcher.start()
        flood_s = 0.0
        codes: list[int] = []
        if flood:
            with ThreadPoolExecutor(flood) as pool:
                started = time.perf_counter()
                for _ in range(rounds):
                    codes += pool.map(lambda _: _still(server.base, alice), range(flood))
                flood_s = time.perf_counter() - started
        else:
            time.sleep(3.0)  # the reference: B alone for a few seconds
        done.set()
        watcher.join()
        rss = peak_rss_mb(server.process.pid)
    bad = [c for c in codes if c != 200]
    if bad:
        raise SystemExit(f"{name}: {len(bad)} stills were not 200: {sorted(set(bad))}")
    ordered = sorted(latencies)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "requests": len(ordered),
        "rss_mb": rss,
        "flood_s": flood_s,
    }


def _still(base: str, headers: dict[str, str]) -> int:
    with httpx.Client(base_url=base, timeout=300) as own:  # a connection each, like browsers
        return own.post("/v1/stills", json=HEAVY, headers=headers).status_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flood", type=int, default=40, help="stills sent at once by user A")
    parser.add_argument("--rounds", type=int, default=2, help="floods one after the other")
    parser.add_argument("--also", type=int, nargs="*", default=[],
                        help="more bounds to compare (e.g. --also 1 4)")  # fmt: skip
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    phases = {
        "idle": (0, {}),
        "unbounded": (args.flood, {"RENDERLAB_STILLS_AT_ONCE": "1000"}),
        "bounded": (args.flood, {}),
        **{f"bound={n}": (args.flood, {"RENDERLAB_STILLS_AT_ONCE": str(n)}) for n in args.also},
    }
    results = {name: run_phase(name, flood, args.rounds, env)
               for name, (flood, env) in phases.items()}  # fmt: skip
    idle = results["idle"]
    print(f"{args.rounds} x {args.flood} heavy 1080p stills by one user; {cores} cores; "
          f"bound = {cores} at once")  # fmt: skip
    print(f"{'phase':<10} {'B median ms':>12} {'B p99 ms':>9} {'x idle':>7} {'B reqs':>7} "
          f"{'API peak RSS MB':>16} {'flood s':>8}")  # fmt: skip
    for name, r in results.items():
        ratio = r["median_ms"] / idle["median_ms"]
        print(f"{name:<10} {r['median_ms']:>12.1f} {r['p99_ms']:>9.1f} {ratio:>7.1f} "
              f"{r['requests']:>7.0f} {r['rss_mb']:>16.0f} {r['flood_s']:>8.2f}")  # fmt: skip
    unbounded, bounded = results["unbounded"], results["bounded"]
    print(f"bounded vs unbounded: B median {bounded['median_ms'] / unbounded['median_ms']:.2f}x, "
          f"B p99 {bounded['p99_ms'] / unbounded['p99_ms']:.2f}x, "
          f"peak RSS {bounded['rss_mb'] / unbounded['rss_mb']:.2f}x, "
          f"flood time {bounded['flood_s'] / unbounded['flood_s']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
