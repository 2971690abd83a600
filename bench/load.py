"""Many users at once: sign in, create generations, start renders, watch them to the end.

    .venv/bin/python bench/load.py --spawn sqlite                  # 60 s, 20 users
    .venv/bin/python bench/load.py --spawn sqlite --users 40 --seconds 30
    .venv/bin/python bench/load.py --url http://127.0.0.1:8000     # a server you started

Each simulated user signs in (``POST /v1/auth/token``), then until the time is up: creates a
generation, starts a render of it, and when accepted (202) watches its SSE stream to a terminal
status; once refused (429, the quota) it keeps reading its lists at a slow pace, as a page
would. Renders are small (``--frames`` at 320x180) so the embedded workers of a 2-core box
keep up: the point is the API and the pipeline under concurrency, not the encoder.

Deletes are mixed in (``--delete-every N``, default 3 here): of each user's accepted renders,
the 1st, 4th, ... are deleted at once (pending or rendering: cancelled first), the 2nd, 5th,
... once they end. A start refused with 429 ``too_many_concurrent_renders`` (the per-user cap)
waits for one of the user's renders to end and tries again; the quota's 429 ends the loop.

What the run checks, besides throughput and p50/p99 latency per operation: no 5xx at all;
every accepted render ended ``complete`` or ``failed`` (re-read after the run, after a drain
period); every deleted render answers 404; every kept complete render still downloads (no
other user's file was lost); no user had more renders accepted than the quota advertised in
``RateLimit-Policy``; and, with ``--spawn``, no object in storage is referenced by no row
(orphans, counted by walking the storage folder against the database).
Exit status 1 when any of those fails, so the script doubles as a check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = {"complete", "failed"}


@dataclass
class Stats:
    """Everything the users saw, shared by all of them (one event loop, no locks needed)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    codes: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    accepted: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    ended: dict[str, str] = field(default_factory=dict)
    refused: int = 0
    quota: int | None = None
    errors: list[str] = field(default_factory=list)
    sse_first_event_ms: list[float] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    cancelled_by_delete: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    concurrency_refused: int = 0

    def record(self, op: str, started: float, status: int) -> None:
        self.latencies[op].append((time.perf_counter() - started) * 1000)
        self.codes[status] += 1
        if status >= 500:
            self.errors.append(f"{op}: {status}")


async def call(
    stats: Stats, client: httpx.AsyncClient, op: str, method: str, url: str, **kwargs: object
) -> httpx.Response:
    started = time.perf_counter()
    response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    stats.record(op, started, response.status_code)
    return response


async def delete(stats: Stats, client: httpx.AsyncClient, render_id: str) -> None:
    response = await call(stats, client, "delete_render", "DELETE", f"/v1/renders/{render_id}")
    if response.status_code == 204:
        stats.deleted.add(render_id)
    else:
        stats.errors.append(f"delete {render_id}: {response.status_code}")


async def watch(
    stats: Stats, client: httpx.AsyncClient, render_id: str, timeout: float, then_delete: bool
) -> None:
    """Follow one render's SSE stream until it reports a terminal status (or time runs out),
    then delete it if asked."""
    await follow(stats, client, render_id, timeout)
    if then_delete and render_id in stats.ended:
        await delete(stats, client, render_id)


async def follow(stats: Stats, client: httpx.AsyncClient, render_id: str, timeout: float) -> None:
    """Follow one render's SSE stream until it reports a terminal status (or time runs out)."""
    started = time.perf_counter()
    first = True
    try:
        async with asyncio.timeout(timeout):
            async with client.stream("GET", f"/v1/renders/{render_id}/events") as response:
                stats.record("sse_open", started, response.status_code)
                if response.status_code != 200:
                    return
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    if first:
                        stats.sse_first_event_ms.append((time.perf_counter() - started) * 1000)
                        first = False
                    status = json.loads(line[5:]).get("status")
                    if status in TERMINAL:
                        stats.ended[render_id] = status
                        stats.latencies["render_total"].append(
                            (time.perf_counter() - started) * 1000
                        )
                        return
    except (TimeoutError, httpx.HTTPError) as exc:
        stats.errors.append(f"sse {render_id}: {type(exc).__name__}")


async def backoff(response: httpx.Response, most: float) -> None:
    """As a well-behaved client: after a 503, wait its ``Retry-After`` (at most ``most`` s)."""
    if response.status_code == 503:
        await asyncio.sleep(min(float(response.headers.get("Retry-After", most)), most))


def quota_of(response: httpx.Response) -> int | None:
    match = re.search(r"q=(\d+)", response.headers.get("RateLimit-Policy", ""))
    return int(match.group(1)) if match else None


async def user(
    stats: Stats, base: str, name: str, args: argparse.Namespace, deadline: float
) -> None:
    """One user's session: the loop described in the module docstring."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await call(stats, client, "token", "POST", "/v1/auth/token", json={"name": name})
        if response.status_code != 201:
            stats.errors.append(f"token {name}: {response.status_code}")
            return
        client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        props = {
            "text": f"Load {name}",
            "style": "fade-in",
            "color": "#FFFFFF",
            "duration_in_frames": args.frames,
        }
        over_quota = False
        watchers: list[asyncio.Task[None]] = []
        while time.monotonic() < deadline:
            if over_quota:
                await call(stats, client, "list_renders", "GET", "/v1/renders")
                await asyncio.sleep(args.idle_pause)
                continue
            gen = await call(
                stats, client, "create_generation", "POST", "/v1/generations",
                json={"prompt": "load", "animation_props": props},
            )  # fmt: skip
            if gen.status_code != 201:
                await backoff(gen, args.idle_pause)
                continue
            body = {"generation_id": gen.json()["id"], "width": 320, "height": 180}
            render = await call(stats, client, "start_render", "POST", "/v1/renders", json=body)
            stats.quota = stats.quota or quota_of(render)
            if render.status_code == 202:
                render_id = render.json()["id"]
                stats.accepted[name].append(render_id)
                turn = deletion_turn(len(stats.accepted[name]), getattr(args, "delete_every", 0))
                if turn == "now":  # pending: cancelled first, its quota slot comes back
                    await delete(stats, client, render_id)
                    stats.cancelled_by_delete[name] += render_id in stats.deleted
                else:
                    task = watch(stats, client, render_id, args.render_timeout, turn == "after")
                    watchers.append(asyncio.create_task(task))
                await asyncio.sleep(args.think)
            elif render.status_code == 429 and is_concurrency_cap(render):
                stats.concurrency_refused += 1
                await one_ends(watchers, args.think)
            elif render.status_code == 429:
                stats.refused += 1
                over_quota = True
            else:
                await backoff(render, args.idle_pause)
        await asyncio.gather(*watchers)


def deletion_turn(nth: int, every: int) -> str:
    """When the user's ``nth`` (from 1) accepted render is deleted: ``now``, ``after`` it
    ends, or ``never``; ``every`` = 0 deletes nothing."""
    if every <= 0:
        return "never"
    return {0: "now", 1: "after"}.get((nth - 1) % every, "never")


def is_concurrency_cap(response: httpx.Response) -> bool:
    try:
        return response.json()["error"]["code"] == "too_many_concurrent_renders"
    except (ValueError, KeyError, TypeError):
        return False


async def one_ends(watchers: list[asyncio.Task[None]], most: float) -> None:
    """Until one of the user's followed renders ends (at most ``most`` s when none is left)."""
    running = [task for task in watchers if not task.done()]
    if running:
        await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    else:
        await asyncio.sleep(most)


def final_status(base: str, stats: Stats, tokens: dict[str, str]) -> dict[str, str]:
    """Re-read every accepted render once the run is over: the ground truth, not the streams.
    A deleted render must be gone (``deleted`` when it answers 404)."""
    out = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for name, ids in stats.accepted.items():
            headers = {"Authorization": tokens[name]}
            for render_id in ids:
                answer = client.get(f"/v1/renders/{render_id}", headers=headers)
                if render_id in stats.deleted:
                    out[render_id] = "deleted" if answer.status_code == 404 else "NOT deleted"
                    continue
                body = answer.json()
                out[render_id] = body.get("status") or f"unreadable: {body}"
    return out


def lost_files(base: str, stats: Stats, tokens: dict[str, str], finals: dict[str, str]) -> int:
    """Kept complete renders whose video no longer downloads: files deletes must not touch."""
    lost = 0
    with httpx.Client(base_url=base, timeout=30) as client:
        for name, ids in stats.accepted.items():
            headers = {"Authorization": tokens[name]}
            for render_id in ids:
                if finals.get(render_id) != "complete":
                    continue
                url = client.get(f"/v1/renders/{render_id}", headers=headers).json()["output_url"]
                got = client.get(url, headers={"Range": "bytes=0-0"}) if url else None
                lost += got is None or got.status_code not in (200, 206)
    return lost


def orphans(data: Path) -> tuple[int, int]:
    """``(objects in storage, objects no render row references)`` of a spawned server."""
    root = data / "storage"
    stored = {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    }
    with sqlite3.connect(data / "renderlab.db") as connection:
        rows = connection.execute("SELECT output_key, poster_key FROM renders").fetchall()
    referenced = {key for row in rows for key in row if key}
    return len(stored), len(stored - referenced)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(stats: Stats, seconds: float, finals: dict[str, str], label: str = "RESULT") -> bool:
    total = sum(len(v) for k, v in stats.latencies.items() if k != "render_total")
    print(f"requests: {total} in {seconds:.1f} s = {total / seconds:.1f}/s")
    print(f"{'operation':<18}{'count':>7}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for op, values in sorted(stats.latencies.items()):
        print(
            f"{op:<18}{len(values):>7}{statistics.median(values):>10.1f}"
            f"{pct(values, 0.99):>10.1f}{max(values):>10.1f}"
        )
    if stats.sse_first_event_ms:
        print(
            f"sse first event: p50 {statistics.median(stats.sse_first_event_ms):.1f} ms, "
            f"p99 {pct(stats.sse_first_event_ms, 0.99):.1f} ms"
        )
    by_class = defaultdict(int)
    for code, count in stats.codes.items():
        by_class[f"{code // 100}xx"] += count
    print("status codes:", dict(sorted(stats.codes.items())), dict(sorted(by_class.items())))
    accepted = sum(len(v) for v in stats.accepted.values())
    outcome = defaultdict(int)
    for status in finals.values():
        outcome[status] += 1
    print(
        f"renders accepted: {accepted}, refused 429: {stats.refused}, refused by the "
        f"concurrency cap: {stats.concurrency_refused}, deleted: {len(stats.deleted)}, "
        f"final: {dict(outcome)}"
    )
    most = max(
        (len(v) - stats.cancelled_by_delete[name] for name, v in stats.accepted.items()),
        default=0,
    )
    print(
        f"max renders accepted by one user, less those deleted at once (refunded): {most} "
        f"(quota {stats.quota})"
    )
    for line in stats.errors[:20]:
        print("error:", line)
    ok = (
        by_class["5xx"] == 0
        and all(s in TERMINAL or s == "deleted" for s in finals.values())
        and (stats.quota is None or most <= stats.quota)
    )
    print(f"{label}:", "ok" if ok else "FAILED")
    return ok


def spawn_sqlite(port: int, data: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RENDERLAB_DATA_DIR": str(data),
        "RENDERLAB_AUTH": "dev",  # sign-in with a name, and a fixed secret
        "RENDERLAB_JWT_SECRET": "load-secret-" + "x" * 40,
    }
    exe = ROOT / ".venv" / "bin" / "renderlab"
    return subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data / "serve.log", "wb"),
    )


def wait_healthy(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base} did not become healthy")


async def run(base: str, args: argparse.Namespace) -> tuple[Stats, float]:
    stats = Stats()
    run_id = uuid.uuid4().hex[:6]
    started = time.monotonic()
    deadline = started + args.seconds
    names = [f"load-{run_id}-{i}" for i in range(args.users)]
    await asyncio.gather(*(user(stats, base, name, args, deadline) for name in names))
    return stats, time.monotonic() - started


def add_user_arguments(parser: argparse.ArgumentParser, users: int, seconds: float) -> None:
    """What every simulated user does (``user``): shared with ``bench/faults.py``."""
    parser.add_argument("--users", type=int, default=users)
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--think", type=float, default=0.5, help="pause after a 202 (s)")
    parser.add_argument("--idle-pause", type=float, default=1.0, help="pause when over quota")
    parser.add_argument("--render-timeout", type=float, default=180)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="base URL of a running server")
    parser.add_argument("--spawn", choices=["sqlite"], help="start renderlab serve itself")
    add_user_arguments(parser, users=20, seconds=60)
    parser.add_argument(
        "--delete-every",
        type=int,
        default=3,
        help="of every N renders, delete one at once and one once it ended (0: no deletes)",
    )
    args = parser.parse_args()
    if bool(args.url) == bool(args.spawn):
        parser.error("give exactly one of --url and --spawn")
    server = None
    tmp = None
    base = args.url
    if args.spawn:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        tmp = tempfile.TemporaryDirectory(prefix="renderlab-load-")
        server = spawn_sqlite(port, Path(tmp.name))
        base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        stats, seconds = asyncio.run(run(base, args))
        # Ground truth: each accepted render re-read with its owner's token.
        tokens = {}
        with httpx.Client(base_url=base, timeout=30) as client:
            for name in stats.accepted:
                token = client.post("/v1/auth/token", json={"name": name}).json()["token"]
                tokens[name] = f"Bearer {token}"
        finals = final_status(base, stats, tokens)
        ok = report(stats, seconds, finals)
        lost = lost_files(base, stats, tokens, finals)
        print(f"kept complete renders whose file is lost: {lost}")
        ok = ok and lost == 0
        if tmp is not None:
            stored, orphaned = orphans(Path(tmp.name))
            print(f"objects in storage: {stored}, orphans (referenced by no row): {orphaned}")
            ok = ok and orphaned == 0
        if server is not None and server.poll() is not None:
            print("server exited during the run:", server.returncode)
            ok = False
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        if tmp is not None:
            tmp.cleanup()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
