"""1,000 live-progress streams on one API process: memory, CPU, and delivery latency.

    .venv/bin/python bench/sse.py                   # 1,000 streams, SQLite
    .venv/bin/python bench/sse.py --streams 2000 --db postgresql

One uvicorn process serves ``GET /v1/renders/{id}/events`` for N renders (N clients, one
stream each, over loopback). Reported: the server's resident memory before and with the
streams open; its CPU while the streams sit idle (the shared feed still polls every 100 ms);
its CPU while one render is updated every 100 ms by another process's writes (this bench
process, through the database, as a worker would); and how long each of those updates took to
reach its watcher. One shared poller a process means the idle cost must not grow with N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api import PG_ADMIN_URL, cpu_seconds, free_port, make_tokens, wait_for

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-" + "x" * 40


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def seed(url: str, count: int) -> list[str]:
    """``count`` pending renders of user bench-0 (the token the clients use)."""
    from renderlab import store
    from renderlab.clock import now_ms
    from renderlab.db import Database

    db = Database(url)
    with db.transaction() as session:
        user = store.get_or_create_user(session, "renderlab|bench-0").id
        generation = store.create_generation(
            session, user, {"text": "x", "style": "scale", "color": "#FFFFFF"}
        ).id
        ids = [
            store.insert(
                session.connection(),
                now=now_ms(),
                user_id=user,
                generation_id=generation,
                width=1920,
                height=1080,
                fps=30,
                duration_in_frames=60,
            ).id
            for _ in range(count)
        ]
    db.dispose()
    return ids


async def open_stream(
    port: int, token: str, render_id: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """(A dropped StreamWriter closes its connection, so the caller keeps both.)"""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(
        f"GET /v1/renders/{render_id}/events HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    status = await reader.readline()
    assert b" 200 " in status, status
    while await reader.readline() not in (b"\r\n", b""):
        pass
    return reader, writer


async def read_events(reader: asyncio.StreamReader, sink: list[tuple[int, float]]) -> None:
    """Record ``(progress, arrival time)`` of every render event (chunked framing skipped)."""
    while True:
        line = await reader.readline()
        if not line:
            return
        if line.startswith(b"data: "):
            sink.append((json.loads(line[6:])["progress"], time.time()))


async def measure(url: str, port: int, pid: int, ids: list[str], seconds: float) -> None:
    from renderlab import store
    from renderlab.db import Database

    token = make_tokens(SECRET, 1)[0]
    before = rss_mb(pid)
    started = time.perf_counter()
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for start in range(0, len(ids), 100):  # open in batches, as clients would arrive
        batch = ids[start : start + 100]
        streams += await asyncio.gather(*(open_stream(port, token, i) for i in batch))
    opened_s = time.perf_counter() - started
    events: list[list[tuple[int, float]]] = [[] for _ in ids]
    tasks = [
        asyncio.create_task(read_events(reader, sink))
        for (reader, _writer), sink in zip(streams, events, strict=True)
    ]
    await asyncio.sleep(2)
    with_streams = rss_mb(pid)

    cpu = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    idle_cpu = (cpu_seconds(pid) - cpu) / seconds

    db = Database(url)
    target = ids[len(ids) // 2]
    committed: dict[int, float] = {}
    cpu = cpu_seconds(pid)
    began = time.perf_counter()
    progress = 0
    while time.perf_counter() - began < seconds and progress < 99:
        progress += 1
        changes: dict[str, object] = {"progress": progress}
        if progress == 1:
            changes["status"] = "rendering"
        await asyncio.to_thread(_update, db, store, target, changes)
        committed[progress] = time.time()
        await asyncio.sleep(0.1)
    busy_s = time.perf_counter() - began
    await asyncio.sleep(0.5)
    busy_cpu = (cpu_seconds(pid) - cpu - idle_cpu * 0.5) / busy_s
    db.dispose()

    arrived = dict(events[ids.index(target)])
    latencies = sorted(arrived[p] - committed[p] for p in committed if p in arrived)
    others = sum(len(e) for i, e in enumerate(events) if ids[i] != target)
    for task in tasks:
        task.cancel()
    for _reader, writer in streams:
        writer.close()
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    print(f"streams open            {len(ids)} (opened in {opened_s:.1f} s)")
    print(
        f"server RSS              {before:.0f} MB before, {with_streams:.0f} MB with streams "
        f"({(with_streams - before) * 1024 / len(ids):.0f} KB a stream)"
    )
    print(f"server CPU, idle        {idle_cpu * 100:.1f} % of a core")
    print(f"server CPU, 1 updating  {busy_cpu * 100:.1f} % of a core ({len(committed)} updates)")
    print(
        f"update -> watcher       median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms ({len(latencies)}/{len(committed)} delivered)"
    )
    print(f"events on other streams {others - (len(ids) - 1)} beyond their first (expected 0)")


def _update(db: object, store: object, render_id: str, changes: dict[str, object]) -> None:
    from renderlab.clock import now_ms

    with db.transaction() as session:  # type: ignore[attr-defined]
        store.update(session, render_id, now=now_ms(), **changes)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()

    from sqlalchemy import create_engine, text

    from renderlab.db import upgrade

    data = Path(tempfile.mkdtemp(prefix="renderlab-sse-"))
    pg_name = None
    if args.db == "sqlite":
        url = f"sqlite:///{data / 'renderlab.db'}"
    else:
        pg_name = f"renderlab_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{pg_name}"'))
        admin.dispose()
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + pg_name
    upgrade(url)
    ids = seed(url, args.streams)
    port = free_port()
    env = {
        **os.environ,
        "RENDERLAB_DATA_DIR": str(data),
        "RENDERLAB_DATABASE_URL": url,
        "RENDERLAB_JWT_SECRET": SECRET,
    }
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "api.py"), "--serve", str(port)], env=env, cwd=ROOT
    )
    try:
        wait_for(port)
        print(f"{os.cpu_count()} cores, {args.db}")
        asyncio.run(measure(url, port, server.pid, ids, args.seconds))
    finally:
        server.terminate()
        server.wait(10)
        if pg_name is not None:
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
