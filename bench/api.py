"""API throughput and latency: render creation and render reads at 32 concurrent clients.

    .venv/bin/python bench/api.py                 # SQLite and PostgreSQL
    .venv/bin/python bench/api.py --db sqlite --seconds 10

The server is one uvicorn process, as ``renderlab serve`` runs it (uvloop + httptools, no
access log), with no workers attached, so what is measured is the API: auth, validation, the
quota transaction, the insert, serialisation. The quota is raised for the run
(``RENDERLAB_RENDERS_PER_HOUR``) so creations are not refused after five. The clients are one
separate process speaking HTTP/1.1 keep-alive over raw asyncio streams, cheap enough not to
steal the server's CPU on a two-core machine. Targets on 2 cores with SQLite: >= 300
creations/s, >= 1,000 reads/s, p99 <= 50 ms.

First, in the same run and with the same clients, a bare Starlette JSON route under uvicorn
(uvloop + httptools): every phase prints its rate as a ratio to it, a figure that means the
same on a faster or slower machine (issue 16: reads >= 0.15x).

``--processes 2`` runs two servers on the port (SO_REUSEPORT), as ``renderlab serve
--processes 2`` does (uvicorn's workers on one socket), to use the second core; SQLite writers
of both queue on the file lock beside the database (``db.WriterQueue``).

"server CPU" is the servers' CPU time over the phase: a figure well under 100 % for one
process means something else on the machine took the core, and the phase's numbers are low for
that reason. "client CPU" is this load generator's: with the server near 100 % and the client
near 100 % too, the two cores are full, and the latencies include the client's own queueing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "RENDERLAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PROPS = {"text": "Bench", "style": "fade-in", "color": "#FFFFFF", "duration_in_frames": 60}


# -- the server (runs in its own process) -----------------------------------------------------


def serve(port: int, shared: bool) -> None:
    import uvicorn

    from renderlab.api import create_app, freeze_startup_heap
    from renderlab.config import Settings
    from renderlab.db import Database
    from renderlab.limits import Limits
    from renderlab.services import Services

    settings = Settings()
    db = Database(settings.resolved_database_url())
    services = Services(settings=settings, limits=Limits(), db=db)
    app = create_app(services)
    freeze_startup_heap()  # as `renderlab serve` does
    config = uvicorn.Config(
        app,
        access_log=False,
        log_level="warning",
        loop="uvloop",
        http="httptools",
    )
    if not shared:  # exactly as `renderlab serve` runs it
        config.host, config.port = "127.0.0.1", port
        uvicorn.Server(config).run()
        return
    # SO_REUSEPORT: with --processes N, N servers share the port and the kernel spreads
    # connections over them.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    uvicorn.Server(config).run(sockets=[sock])


def serve_bare(port: int) -> None:
    """The reference: one Starlette JSON route under uvicorn as renderlab's server runs."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hello(_request: object) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/", hello)])
    uvicorn.run(
        app, host="127.0.0.1", port=port, access_log=False, log_level="warning",
        loop="uvloop", http="httptools",
    )  # fmt: skip


# -- a minimal keep-alive HTTP/1.1 client ------------------------------------------------------


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def request(
        self, method: str, path: str, token: str, body: bytes = b""
    ) -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def cpu_seconds(pid: int | list[int]) -> float:
    """User + system CPU time of process ``pid`` (or the sum over a list), from /proc."""
    if isinstance(pid, list):
        return sum(cpu_seconds(one) for one in pid)
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Phase:
    name: str
    count: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def line(self, reference: Phase | None = None) -> str:
        ratio = f"{self.rate / reference.rate:6.3f}x bare   " if reference else ""
        lat = sorted(self.latencies_ms)
        p50 = statistics.median(lat) if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan")
        return (
            f"{self.name:<10} {self.rate:8.0f} req/s   {ratio}p50 {p50:6.1f} ms   "
            f"p99 {p99:6.1f} ms   server CPU {self.server_cpu_s / self.seconds * 100:3.0f} % "
            f"({self.server_cpu_s / max(self.count, 1) * 1e6:5.0f} us/req)   "
            f"client CPU {self.client_cpu_s / self.seconds * 100:3.0f} %   "
            f"({self.count} requests, {self.errors} errors)"
        )


async def run_phase(
    name: str,
    port: int,
    server_pid: int | list[int],
    clients: list[dict[str, str]],
    seconds: float,
    make: callable,  # type: ignore[valid-type]
) -> Phase:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(state: dict[str, str]) -> None:
        nonlocal errors
        connection = await Connection.open(port)
        try:
            while time.perf_counter() < deadline:
                method, path, body, expect = make(state)
                started = time.perf_counter()
                status, payload = await connection.request(method, path, state["token"], body)
                latencies.append((time.perf_counter() - started) * 1000)
                if status != expect:
                    errors += 1
                elif method == "POST":
                    state["render"] = json.loads(payload)["id"]
        finally:
            connection.close()

    started, cpu, own = time.perf_counter(), cpu_seconds(server_pid), cpu_seconds(os.getpid())
    await asyncio.gather(*(client(state) for state in clients))
    elapsed, used = time.perf_counter() - started, cpu_seconds(server_pid) - cpu
    return Phase(
        name, len(latencies), elapsed, latencies, errors, used, cpu_seconds(os.getpid()) - own
    )


class Sweeper:
    """Ends the pending renders every ``every_ms``, as a worker pool would take them, in a
    thread of this (client) process: with no workers and the concurrency cap raised, each
    bench user would otherwise pile up hundreds of pending renders, and every start's count of
    them (``check_concurrency``) walk them all, a cost no deployment has (the cap, 2 by
    default, bounds a user's running renders)."""

    def __init__(self, url: str, every_ms: int) -> None:
        import threading

        self.url, self.every_s = url, every_ms / 1000
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url)
        while not self.stop.wait(self.every_s):
            with engine.begin() as connection:
                connection.execute(
                    text("UPDATE renders SET status = 'failed' WHERE status = 'pending'")
                )
        engine.dispose()

    def __enter__(self) -> Sweeper:
        if self.every_s > 0:
            self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(10)


async def bench(
    port: int, server_pid: int | list[int], tokens: list[str], seconds: float, sweeper: Sweeper
) -> list[Phase]:
    clients: list[dict[str, str]] = []
    for token in tokens:
        connection = await Connection.open(port)
        body = json.dumps({"animation_props": PROPS}).encode()
        status, payload = await connection.request("POST", "/v1/generations", token, body)
        assert status == 201, payload
        clients.append({"token": token, "generation": json.loads(payload)["id"]})
        connection.close()

    def create(state: dict[str, str]) -> tuple[str, str, bytes, int]:
        body = json.dumps({"generation_id": state["generation"]}).encode()
        return "POST", "/v1/renders", body, 202

    def read(state: dict[str, str]) -> tuple[str, str, bytes, int]:
        return "GET", f"/v1/renders/{state['render']}", b"", 200

    with sweeper:
        await run_phase("warm-up", port, server_pid, clients, 1.0, create)
        creations = await run_phase("creations", port, server_pid, clients, seconds, create)
    reads = await run_phase("reads", port, server_pid, clients, seconds, read)
    return [creations, reads]


# -- orchestration -----------------------------------------------------------------------------


def measure_bare(concurrency: int, seconds: float) -> Phase:
    """The bare route's requests/s with the same clients, in this run."""
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(port)], cwd=ROOT)
    try:
        wait_for(port)
        clients = [{"token": "-"} for _ in range(concurrency)]

        def get(_state: dict[str, str]) -> tuple[str, str, bytes, int]:
            return "GET", "/", b"", 200

        return asyncio.run(run_phase("bare", port, server.pid, clients, seconds, get))
    finally:
        server.terminate()
        server.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def run_against(
    kind: str, concurrency: int, seconds: float, processes: int, sweep_ms: int
) -> list[Phase]:
    from sqlalchemy import create_engine, text

    from renderlab.db import upgrade

    data = Path(tempfile.mkdtemp(prefix="renderlab-bench-"))
    pg_name = None
    if kind == "sqlite":
        url = f"sqlite:///{data / 'renderlab.db'}"
    else:
        pg_name = f"renderlab_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{pg_name}"'))
        admin.dispose()
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + pg_name
    upgrade(url)
    port = free_port()
    env = {
        **os.environ,
        "RENDERLAB_DATA_DIR": str(data),
        "RENDERLAB_DATABASE_URL": url,
        "RENDERLAB_RENDERS_PER_HOUR": "1000000",
        # No workers: a render stays pending until the sweeper ends it (or, without one, for
        # good), and a client starts the next before then.
        "RENDERLAB_MAX_CONCURRENT_RENDERS": "10000",
        "RENDERLAB_JWT_SECRET": "bench-secret-" + "x" * 40,
    }
    servers = [
        subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), *(["--shared"] * (processes > 1))],
            env=env,
            cwd=ROOT,
        )
        for _ in range(processes)
    ]
    try:
        wait_for(port)
        time.sleep(1.0 if processes > 1 else 0)  # let every server bind before clients connect
        tokens = make_tokens(env["RENDERLAB_JWT_SECRET"], concurrency)
        sweeper = Sweeper(url, sweep_ms)
        return asyncio.run(bench(port, [s.pid for s in servers], tokens, seconds, sweeper))
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
        if pg_name is not None:
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()


def make_tokens(secret: str, count: int) -> list[str]:
    import jwt

    now = int(time.time())
    return [
        jwt.encode(
            {"iss": "renderlab", "sub": f"bench-{i}", "iat": now, "exp": now + 3600},
            secret,
            algorithm="HS256",
        )
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="API server processes sharing the port (renderlab serve runs one)",
    )
    parser.add_argument(
        "--sweep-ms",
        type=int,
        default=200,
        help="end pending renders this often, as workers would take them (0: never)",
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--shared", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.shared)
        return
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(
        f"{os.cpu_count()} cores, {args.clients} concurrent clients, {args.seconds:g} s a phase, "
        f"{args.processes} server process(es), pending renders ended every {args.sweep_ms} ms"
    )
    bare = measure_bare(args.clients, args.seconds)
    print(bare.line())
    for kind in kinds:
        print(f"-- {kind}")
        phases = run_against(kind, args.clients, args.seconds, args.processes, args.sweep_ms)
        for phase in phases:
            print(phase.line(bare))


if __name__ == "__main__":
    main()
