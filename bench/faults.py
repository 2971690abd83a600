"""One fault under load on a private cluster: PostgreSQL restarted, Redis restarted, a worker
SIGKILLed, or the S3 endpoint unreachable, while bench/load.py's users work.

    .venv/bin/python bench/faults.py --fault pg-restart --frames 600 --at 1.5 --down 5
    .venv/bin/python bench/faults.py --fault redis-restart --frames 600 --at 1.5 --down 5
    .venv/bin/python bench/faults.py --fault worker-kill --frames 600 --at 1.5 --down 5
    .venv/bin/python bench/faults.py --fault s3-down --frames 600 --at 1.5 --down 5
    .venv/bin/python bench/faults.py --fault none --users 20 --seconds 60   # plain cluster load

(10 users, 20 s by default; runs as root. With 600-frame renders and the fault 1.5 s in, it
lands while users are still starting renders and the workers have a queue.)

Everything is private, in one temporary directory, so nothing another engineer uses is ever
restarted: a PostgreSQL cluster (``initdb`` as the ``postgres`` OS user, since initdb refuses
root; trust auth, fsync off, socket in the temp dir, a free port), a Redis without persistence
(a restart loses every queued message, the worst case), a moto S3 server behind a small TCP
forwarder, two ``renderlab worker -c 1`` and one ``renderlab serve``, wired by the environment
variables of docs/deploy.md. The forwarder is what "S3 down" closes: new connections are
refused and open ones cut, while moto keeps its objects, as a real store that is unreachable
for a while would (restarting moto would lose every object instead).

The load is bench/load.py's users (imported, not copied). The fault is injected ``--at``
seconds into the load and repaired ``--down`` seconds later. During the run ``/healthz`` is
polled every 0.25 s, and once the fault is in place one DB-backed request is made, so the
report says what a user sees then. After the load, every accepted render is re-read (waiting
up to ``--drain`` seconds for renders the fault left in flight): the ground truth.

Exit status 1 when: any accepted render is not ``complete``/``failed`` after the drain, any
user had more accepted renders than the quota, any request ended without an HTTP answer, a
process of the cluster died, or a 5xx was answered. The one 5xx accepted is during a
PostgreSQL outage (from the stop until ``--grace`` seconds after the restart): the API cannot
answer without its database, and the report counts them and shows their body.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))  # bench/load.py
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/s3_server.py
from tests.s3_server import S3_TEST_CREDENTIALS, _wait_until_up, create_bucket, free_port

import load

ROOT = Path(__file__).resolve().parent.parent
RENDERLAB = str(ROOT / ".venv" / "bin" / "renderlab")
FAULTS = ["none", "pg-restart", "redis-restart", "worker-kill", "s3-down"]
BUCKET = "renderlab-faults"
JWT_SECRET = "faults-secret-" + "f" * 40


# ---------------------------------------------------------------------------- processes


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A process in a session (process group) of its own, output to a file: a group can be
    killed whole (a Celery worker and its render processes), and a file never fills up like an
    unread pipe."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the process's whole group and reap it (SIGKILL after 10 s if ``sig`` was not)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout:g} s")
        time.sleep(0.1)


class Postgres:
    """A private PostgreSQL cluster under ``work/pg``, owned by the ``postgres`` OS user."""

    def __init__(self, work: Path, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.data = work / "pg"
        self.sockets = work / "pgsock"
        self.log = work / "postgres.log"
        self.port = free_port()
        for path in (self.data, self.sockets):
            path.mkdir()
            shutil.chown(path, "postgres", "postgres")
        self.log.touch()
        shutil.chown(self.log, "postgres", "postgres")
        self._as_postgres(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/renderlab"

    def _as_postgres(self, tool: str, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", str(self.bin / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
            "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``fast``: what ``systemctl restart`` does (sessions ended, clean checkpoint)."""
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def create_database(self) -> None:
        subprocess.run(
            [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
             "postgres", "renderlab"],
            check=True, timeout=60,
        )  # fmt: skip

    def cleanup(self) -> None:
        """Stop however it is: pg_ctl immediate, then SIGKILL the postmaster if it is left."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        with contextlib.suppress(Exception):
            self.stop("immediate")
        if pid_file.exists():
            with contextlib.suppress(Exception):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


class TcpProxy:
    """A loopback TCP forwarder whose listening socket can be closed and reopened on the same
    port: while down, connections are refused and the open ones are cut."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()

    def up(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), backlog=128)
        listener.settimeout(0.2)
        self._running.set()
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def down(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self._running.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    client.close()
                    continue
                client.settimeout(None)
                upstream.settimeout(None)
                with self._lock:
                    self._open.update((client, upstream))
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            source.close()


@dataclass
class Cluster:
    """The private cluster's processes; each fault acts on one of them."""

    work: Path
    pg: Postgres
    env: dict[str, str] = field(default_factory=dict)
    redis_port: int = 0
    redis: subprocess.Popen[bytes] | None = None
    moto: subprocess.Popen[bytes] | None = None
    s3: TcpProxy | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    serve: subprocess.Popen[bytes] | None = None
    base: str = ""

    def start_redis(self) -> None:
        argv = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.work)]  # fmt: skip
        self.redis = spawn(argv, self.work / "redis.log")
        client = redis.Redis(port=self.redis_port, socket_connect_timeout=1)

        def ping() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for(ping, "redis")

    def start_worker(self, name: str) -> None:
        log = self.work / f"{name}.log"
        offset = log.stat().st_size if log.exists() else 0
        argv = [RENDERLAB, "worker", "-c", "1", "-n", f"{name}@faults", "-l", "INFO"]
        self.workers[name] = spawn(argv, log, self.env)

        def ready() -> bool:
            if self.workers[name].poll() is not None:
                raise RuntimeError(f"worker {name} exited; see {log}")
            return f"{name}@faults ready." in log.read_bytes()[offset:].decode(errors="replace")

        wait_for(ready, f"worker {name}")

    def start(self) -> None:
        self.pg.start()
        self.pg.create_database()
        self.redis_port = free_port()
        self.start_redis()
        moto_port = free_port()
        moto_log = self.work / "moto.log"
        self.moto = spawn(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
            moto_log,
            {**os.environ, **S3_TEST_CREDENTIALS},
        )
        _wait_until_up(self.moto, f"http://127.0.0.1:{moto_port}", moto_log, timeout_s=60)
        self.s3 = TcpProxy(moto_port)
        self.s3.up()
        endpoint = f"http://127.0.0.1:{self.s3.port}"
        create_bucket(endpoint, BUCKET)
        self.env = {
            **os.environ,
            **S3_TEST_CREDENTIALS,
            "RENDERLAB_DATA_DIR": str(self.work / "data"),
            "RENDERLAB_DATABASE_URL": self.pg.url,
            "RENDERLAB_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "RENDERLAB_STORAGE_URL": f"s3://{BUCKET}",
            "RENDERLAB_S3_ENDPOINT_URL": endpoint,
            "RENDERLAB_AUTH": "dev",  # sign-in with a name, and a fixed secret
            "RENDERLAB_JWT_SECRET": JWT_SECRET,
        }
        subprocess.run(
            [RENDERLAB, "db", "upgrade"], env=self.env, check=True, capture_output=True, timeout=120
        )
        for name in ("w1", "w2"):
            self.start_worker(name)
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.serve = spawn(
            [RENDERLAB, "serve", "--port", str(port), "--no-access-log"],
            self.work / "serve.log",
            self.env,
        )
        load.wait_healthy(self.base, timeout=60)

    def dead(self) -> list[str]:
        """The processes that should be running and are not."""
        processes = {"serve": self.serve, "redis": self.redis, "moto": self.moto}
        processes.update(self.workers)
        out = [name for name, p in processes.items() if p is None or p.poll() is not None]
        if not (self.pg.data / "postmaster.pid").exists():
            out.append("postgres")
        return out

    def cleanup(self) -> None:
        for process in [self.serve, *self.workers.values(), self.redis, self.moto]:
            if process is not None:
                with contextlib.suppress(Exception):
                    kill_group(process, signal.SIGTERM if process is self.serve else signal.SIGKILL)
        if self.s3 is not None:
            self.s3.down()
        self.pg.cleanup()


# ---------------------------------------------------------------------------- the fault


class Fault(threading.Thread):
    """Injects one fault at ``at`` s after ``t0`` and repairs it ``down`` s later, noting when."""

    def __init__(
        self, kind: str, cluster: Cluster, t0: float, at: float, down: float, token: str
    ) -> None:
        super().__init__(name=f"fault-{kind}", daemon=True)
        self.kind, self.cluster, self.t0, self.at, self.down = kind, cluster, t0, at, down
        self.token = token
        self.events: list[tuple[float, str]] = []
        self.probes: list[str] = []
        self.injected_at: float | None = None
        self.repaired_at: float | None = None
        self.error: str | None = None

    def note(self, what: str) -> float:
        t = time.monotonic() - self.t0
        self.events.append((t, what))
        return t

    def run(self) -> None:
        try:
            time.sleep(max(0.0, self.t0 + self.at - time.monotonic()))
            self.note(f"renders in the database just before: {render_states(self.cluster.pg.url)}")
            self.injected_at = time.monotonic() - self.t0  # the outage starts with the action
            self.inject()
            self.probe()
            time.sleep(max(0.0, self.t0 + self.injected_at + self.down - time.monotonic()))
            self.repaired_at = self.repair()  # the outage ends when the repair is complete
        except Exception as exc:  # reported, and the run fails
            self.error = f"{type(exc).__name__}: {exc}"

    def inject(self) -> float:
        cluster = self.cluster
        if self.kind == "pg-restart":
            self.note("pg_ctl stop -m fast ...")
            cluster.pg.stop("fast")
            return self.note("PostgreSQL stopped")
        if self.kind == "redis-restart":
            assert cluster.redis is not None
            kill_group(cluster.redis)
            return self.note("Redis SIGKILLed (no persistence: every queued message lost)")
        if self.kind == "worker-kill":
            kill_group(cluster.workers["w1"])
            return self.note("worker w1 and its render process SIGKILLed (process group)")
        if self.kind == "s3-down":
            assert cluster.s3 is not None
            cluster.s3.down()
            return self.note("S3 endpoint down (connections refused, open ones cut)")
        raise ValueError(self.kind)

    def repair(self) -> float:
        cluster = self.cluster
        if self.kind == "pg-restart":
            self.note("pg_ctl start ...")
            cluster.pg.start()
            return self.note("PostgreSQL accepting connections again")
        if self.kind == "redis-restart":
            cluster.start_redis()
            return self.note("Redis restarted (empty)")
        if self.kind == "worker-kill":
            self.note("replacement worker w1 starting ...")
            cluster.start_worker("w1")
            return self.note("replacement worker w1 ready")
        if self.kind == "s3-down":
            assert cluster.s3 is not None
            cluster.s3.up()
            return self.note("S3 endpoint back")
        raise ValueError(self.kind)

    def probe(self) -> None:
        """What a user sees while the fault is in place: one DB-backed read and the health."""
        time.sleep(0.5)
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.cluster.base, timeout=10) as client:
            for path in ("/v1/quota", "/healthz"):
                try:
                    response = client.get(path, headers=headers)
                    answer = f"{response.status_code} {response.text[:160]}"
                except httpx.HTTPError as exc:
                    answer = f"no answer ({type(exc).__name__})"
                t = time.monotonic() - self.t0
                self.probes.append(f"t={t:.1f} s GET {path} -> {answer}")


def render_states(url: str) -> dict[str, int]:
    """How many renders are in each status, straight from the database: what the fault hits."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT status, count(*) FROM renders GROUP BY status"))
            return {status: count for status, count in rows}
    finally:
        engine.dispose()


class HealthWatch(threading.Thread):
    """``GET /healthz`` every 0.25 s; keeps each change of answer with its time."""

    def __init__(self, base: str, t0: float) -> None:
        super().__init__(name="healthz", daemon=True)
        self.base, self.t0 = base, t0
        self.changes: list[tuple[float, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        last = None
        with httpx.Client(base_url=self.base, timeout=2) as client:
            while not self.stop.wait(0.25):
                try:
                    answer = str(client.get("/healthz").status_code)
                except httpx.HTTPError as exc:
                    answer = type(exc).__name__
                if answer != last:
                    self.changes.append((time.monotonic() - self.t0, answer))
                    last = answer


# ---------------------------------------------------------------------------- the load


class TimedStats(load.Stats):
    """load.Stats that also keeps each answer's time, to tell outage answers from the rest."""

    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0
        self.timeline: list[tuple[float, str, int]] = []
        self.no_answer: list[str] = []

    def record(self, op: str, started: float, status: int) -> None:
        super().record(op, started, status)
        self.timeline.append((time.monotonic() - self.t0, op, status))


async def run_load(base: str, args: argparse.Namespace, stats: TimedStats) -> float:
    """bench/load.py's users. A request that gets no HTTP answer ends load.user; it is counted
    (with its time) and the user signs in again and goes on, as a person reloading the page
    would, so one broken connection does not end that user's part of the run."""
    run_id = uuid.uuid4().hex[:6]
    started = time.monotonic()
    deadline = started + args.seconds

    async def guarded(name: str) -> None:
        while True:
            try:
                await load.user(stats, base, name, args, deadline)
                return
            except httpx.HTTPError as exc:
                t = time.monotonic() - stats.t0
                stats.no_answer.append(f"t={t:.1f} s {name}: {type(exc).__name__}")
                if time.monotonic() >= deadline:
                    return

    await asyncio.gather(*(guarded(f"load-{run_id}-{i}") for i in range(args.users)))
    return time.monotonic() - started


def token_for(base: str, name: str) -> str:
    with httpx.Client(base_url=base, timeout=30) as client:
        return client.post("/v1/auth/token", json={"name": name}).json()["token"]


def ground_truth(
    base: str, stats: load.Stats, drain_s: float
) -> tuple[dict[str, str], float, Counter[str]]:
    """Every accepted render re-read with its owner's token, again every 2 s while some are
    not terminal (at most ``drain_s``); also the failed renders' sentences."""
    tokens = {name: f"Bearer {token_for(base, name)}" for name in stats.accepted}
    started = time.monotonic()
    while True:
        finals = load.final_status(base, stats, tokens)
        left = [r for r, s in finals.items() if s not in load.TERMINAL]
        if not left or time.monotonic() - started > drain_s:
            break
        time.sleep(2)
    reasons: Counter[str] = Counter()
    owner = {rid: name for name, ids in stats.accepted.items() for rid in ids}
    losers: set[str] = set()
    with httpx.Client(base_url=base, timeout=30) as client:
        for render_id, status in finals.items():
            if status == "failed":
                headers = {"Authorization": tokens[owner[render_id]]}
                body = client.get(f"/v1/renders/{render_id}", headers=headers).json()
                reasons[str(body.get("error"))] += 1
                losers.add(owner[render_id])
        # Slots given back: what a user has left beyond "quota minus renders accepted".
        for name in losers:
            quota = client.get("/v1/quota", headers={"Authorization": tokens[name]}).json()
            given_back = quota["remaining"] - (quota["limit"] - len(stats.accepted[name]))
            reasons["(quota slots given back)"] += max(0, given_back)
    return finals, time.monotonic() - started, reasons


# ---------------------------------------------------------------------------- the report


def fault_report(
    args: argparse.Namespace,
    stats: TimedStats,
    fault: Fault | None,
    health: HealthWatch,
    drained_s: float,
    reasons: Counter[str],
    dead: list[str],
) -> list[str]:
    """Print what was injected when and what users saw; return the reasons the run failed."""
    problems: list[str] = []
    print(f"\n== fault: {args.fault}")
    if fault is not None:
        for t, what in fault.events:
            print(f"  t={t:6.1f} s  {what}")
        for line in fault.probes:
            print(f"  during the fault: {line}")
        if fault.error:
            problems.append(f"the fault could not be injected or repaired: {fault.error}")
    print("  /healthz answers: " + ", ".join(f"{a} from t={t:.1f} s" for t, a in health.changes))
    window = None
    if fault is not None and fault.injected_at is not None:
        end = fault.repaired_at if fault.repaired_at is not None else float("inf")
        window = (fault.injected_at, end)
        during: dict[str, Counter[int]] = defaultdict(Counter)
        for t, op, status in stats.timeline:
            if window[0] <= t <= window[1] + args.grace:
                during[op][status] += 1
        phases: Counter[str] = Counter()
        for t, op, status in stats.timeline:
            if op == "start_render" and status == 202:
                phase = "before" if t < window[0] else "during" if t <= window[1] else "after"
                phases[phase] += 1
        print(f"  renders accepted before/during/after the fault: {dict(phases)}")
        print(
            f"  answers from t={window[0]:.1f} s to {args.grace:g} s after the repair: "
            + "; ".join(f"{op} {dict(sorted(c.items()))}" for op, c in sorted(during.items()))
        )
    errors = [(t, op, s) for t, op, s in stats.timeline if s >= 500]
    if errors:
        by_op = Counter(f"{op} {s}" for _, op, s in errors)
        print(
            f"  5xx: {len(errors)} from t={errors[0][0]:.1f} s to t={errors[-1][0]:.1f} s: "
            f"{dict(by_op)}"
        )
        allowed = args.fault == "pg-restart" and window is not None
        outside = [
            e for e in errors if not (allowed and window[0] <= e[0] <= window[1] + args.grace)
        ]
        if outside:
            problems.append(f"{len(outside)} 5xx outside a PostgreSQL outage (first: {outside[0]})")
    else:
        print("  5xx: none")
    others = [e for e in stats.errors if not re.search(r": 5\d\d$", e)]
    if others:  # load.report shows the first 20 errors only, and the 5xx come first
        kinds = Counter(e.split(": ")[-1] for e in others)
        print(f"  errors other than 5xx: {len(others)}: {dict(kinds)}")
        for line in others[:10]:
            print(f"    {line}")
    accepted = [r for ids in stats.accepted.values() for r in ids]
    unseen = [r for r in accepted if r not in stats.ended]
    print(
        f"  renders whose SSE stream showed the end: {len(accepted) - len(unseen)} of "
        f"{len(accepted)}" + (f"; not: {unseen[:5]}" if unseen else "")
    )
    print(f"  failed renders' sentences: {dict(reasons) or 'none'}")
    print(f"  ground truth re-read after a drain of {drained_s:.1f} s")
    if stats.no_answer:
        print(f"  requests without an HTTP answer: {len(stats.no_answer)}")
        for line in stats.no_answer[:20]:
            print(f"    {line}")
        problems.append(f"{len(stats.no_answer)} requests without an HTTP answer")
    if dead:
        problems.append(f"processes dead at the end: {dead}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fault", choices=FAULTS, required=True)
    parser.add_argument("--at", type=float, default=1.5, help="seconds into the load")
    parser.add_argument("--down", type=float, default=5, help="seconds before the repair")
    parser.add_argument(
        "--grace", type=float, default=5, help="5xx accepted this long after PostgreSQL is back"
    )
    parser.add_argument("--drain", type=float, default=180, help="longest wait for renders")
    load.add_user_arguments(parser, users=10, seconds=20)
    parser.add_argument(
        "--quota",
        type=int,
        help="renders per user per hour on the cluster (default: the product's 5); raise it "
        "with --think so renders keep flowing through the fault instead of stopping at 5",
    )
    parser.add_argument("--pg-bin", type=Path, default=Path("/usr/lib/postgresql/15/bin"))
    parser.add_argument("--logs", type=Path, help="copy the cluster's logs here at the end")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root: initdb and postgres run as the postgres OS user via runuser")

    # SIGTERM (a timeout, a CI cancel) must still run the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="renderlab-faults-"))
    if args.quota is not None:
        os.environ["RENDERLAB_RENDERS_PER_HOUR"] = str(args.quota)  # inherited by the cluster
    work.chmod(0o755)  # the postgres OS user must reach its data dir inside
    cluster: Cluster | None = None
    ok = False
    try:
        cluster = Cluster(work, Postgres(work, args.pg_bin))
        print("starting the private cluster in", work, flush=True)
        cluster.start()
        print(
            f"cluster up: serve {cluster.base}, PostgreSQL :{cluster.pg.port}, Redis "
            f":{cluster.redis_port}, S3 :{cluster.s3.port if cluster.s3 else '?'}, workers w1 w2",
            flush=True,
        )
        probe_token = token_for(cluster.base, f"probe-{uuid.uuid4().hex[:6]}")
        t0 = time.monotonic()
        stats = TimedStats(t0)
        fault = None
        if args.fault != "none":
            fault = Fault(args.fault, cluster, t0, args.at, args.down, probe_token)
            fault.start()
        health = HealthWatch(cluster.base, t0)
        health.start()
        seconds = asyncio.run(run_load(cluster.base, args, stats))
        if fault is not None:
            fault.join(args.at + args.down + 120)
        finals, drained_s, reasons = ground_truth(cluster.base, stats, args.drain)
        health.stop.set()
        health.join(5)
        load.report(stats, seconds, finals, label="load alone (any 5xx fails it, outage or not)")
        problems = fault_report(args, stats, fault, health, drained_s, reasons, cluster.dead())
        if not all(s in load.TERMINAL for s in finals.values()):
            problems.append("renders not terminal after the drain")
        most = max((len(v) for v in stats.accepted.values()), default=0)
        if stats.quota is not None and most > stats.quota:
            problems.append(f"a user had {most} renders accepted, quota {stats.quota}")
        for line in problems:
            print("  problem:", line)
        ok = not problems
        print("FAULT RESULT:", "ok" if ok else "FAILED")
    finally:
        if cluster is not None:
            cluster.cleanup()
        if args.logs is not None:
            args.logs.mkdir(parents=True, exist_ok=True)
            for log in work.glob("*.log"):
                shutil.copy(log, args.logs / log.name)
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
