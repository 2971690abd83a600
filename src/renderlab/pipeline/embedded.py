"""The embedded default: renders run in worker processes supervised by ``renderlab serve``.

``EmbeddedWorkers`` is the :class:`~renderlab.services.Dispatcher` of a ``serve`` with no
broker. ``workers`` supervisor threads each take a render id from an in-memory queue and run
that render in their warm render process (:func:`~renderlab.pipeline.child.serve_renders`), a
process that has built its services once and survives from render to render. The supervisor
enforces the timeout and a cancel by killing that process (and starts a fresh one for the next
render), so a render that crashes or is killed cannot take ``serve`` down. A reconciler thread
runs :func:`~renderlab.pipeline.recover.reconcile`, and :meth:`start` recovers what a previous
``serve`` left behind. The queue is only a hint: the database decides who renders what
(claims are compare-and-set with a lease), so a lost queue loses nothing.

One chunk per render, one process per running render: ``workers`` renders (default: the core
count) already keep every core busy, and a text animation within the caps encodes in a second
or two, so splitting it would add joins and processes for no gain. A single leaf process is
also what makes "stop this render now" a plain SIGKILL with nothing orphaned.

Processes come from the ``forkserver`` start method: a clean server process (never a fork of
this threaded one) that has imported the renderer once. A process per render used to cost
its start, its services and its first connections on every render (most of a short render's
request -> complete); now that is paid once per supervisor, before the first render arrives.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess

from renderlab import store
from renderlab.models import TERMINAL_STATUSES, RenderStatus
from renderlab.pipeline import child, failures, lifecycle
from renderlab.pipeline.claim import lease_owner
from renderlab.pipeline.recover import reconcile, recover_orphans
from renderlab.pipeline.webhook_sender import WebhookSender
from renderlab.services import Services

log = logging.getLogger(__name__)

STOP_JOIN_GRACE_S = 5.0
"""Beyond ``stop``'s timeout, how long to wait for supervisors to release killed renders."""


def process_context() -> ForkServerContext | SpawnContext:
    """forkserver where available (Linux, macOS), else spawn; never fork a threaded server."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        forkserver = multiprocessing.get_context("forkserver")
        forkserver.set_forkserver_preload(["renderlab.pipeline.child"])
        return forkserver
    return multiprocessing.get_context("spawn")


@dataclass
class _RenderProcess:
    """One render process and what its supervisor knows about it."""

    render_id: str
    process: BaseProcess
    owner: str
    conn: Connection
    wake_r: int
    wake_w: int
    claimed: bool = False
    cancelled: bool = False
    stop_reason: str | None = None
    started: float = field(default_factory=time.monotonic)

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.wake_w, b"!")


@dataclass
class _Warm:
    """A warm render process and the supervisor's end of its pipe."""

    process: BaseProcess
    conn: Connection


class _Slot:
    """The warm process of one supervisor thread: started once, reused render after render,
    replaced when a render had to be killed or the process ended."""

    def __init__(self) -> None:
        self.warm: _Warm | None = None

    def ready(self, start: Callable[[], _Warm]) -> _Warm:
        if self.warm is not None and not self.warm.process.is_alive():
            self.discard()
        if self.warm is None:
            self.warm = start()
        return self.warm

    def discard(self) -> None:
        """Kill (if still running) and reap the process."""
        warm, self.warm = self.warm, None
        if warm is None:
            return
        if warm.process.is_alive():
            warm.process.kill()
        warm.process.join()
        warm.conn.close()

    def close(self, grace_s: float = 2.0) -> None:
        """Let the process end by itself (its pipe closed), then kill it if it has not."""
        if self.warm is not None:
            self.warm.conn.close()
            self.warm.process.join(grace_s)
        self.discard()


class EmbeddedWorkers:
    """Runs up to ``workers`` renders at once in processes of this machine."""

    def __init__(self, services: Services, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.services = services
        self.workers = workers
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._waiting: set[str] = set()
        self._running: dict[str, _RenderProcess] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._stop_deadline: float | None = None
        self._processes: ForkServerContext | SpawnContext | None = None
        self._webhooks = WebhookSender(services)

    # -- the Dispatcher protocol and its lifecycle ------------------------------------------

    def start(self) -> None:
        """Warm the process server, take back what a previous ``serve`` left, start threads."""
        if self._threads:
            return
        self._processes = process_context()
        warm = self._processes.Process(target=child.ping, name="renderlab-warm-up")
        warm.start()
        warm.join()
        recovered = recover_orphans(self.services, self.dispatch)
        if recovered.retried or recovered.failed:
            log.warning(
                "recovered renders of a previous run: %d retried, %d failed",
                len(recovered.retried),
                len(recovered.failed),
            )
        reconcile(self.services, self.dispatch, pending_age_ms=0)
        for index in range(self.workers):
            self._spawn_thread(self._supervise_loop, f"renderlab-worker-{index}")
        self._spawn_thread(self._reconcile_loop, "renderlab-reconciler")
        self._webhooks.start()  # what a previous serve left in the outbox goes out too

    def dispatch(self, render_id: str) -> None:
        """Queue a render (a no-op if it is already queued or running here)."""
        with self._lock:
            if self._stopping.is_set():
                return  # it stays pending; the next start dispatches it
            if render_id in self._waiting or render_id in self._running:
                return
            self._waiting.add(render_id)
        self._queue.put(render_id)

    def cancel(self, render_id: str) -> None:
        """Kill the render's process now (the render is already failed in the database)."""
        with self._lock:
            job = self._running.get(render_id)
            if job is not None:
                job.cancelled = True
        if job is not None:
            job.wake()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking renders; let running ones finish for up to ``timeout`` seconds, then kill
        them and put them back to ``pending`` (their attempt not counted) for the next start."""
        with self._lock:
            self._stopping.set()
            self._stop_deadline = time.monotonic() + timeout
            jobs = list(self._running.values())
        for job in jobs:
            job.wake()
        for _ in range(self.workers):
            self._queue.put(None)
        end = time.monotonic() + timeout + STOP_JOIN_GRACE_S
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))
        self._threads = []
        self._webhooks.stop(max(0.0, end - time.monotonic()))

    def running(self) -> dict[str, int]:
        """Render id -> pid of the process rendering it, for operators and tests."""
        with self._lock:
            return {
                render_id: job.process.pid
                for render_id, job in self._running.items()
                if job.process.pid is not None
            }

    # -- threads ------------------------------------------------------------------------------

    def _spawn_thread(self, target: object, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _reconcile_loop(self) -> None:
        limits = self.services.limits
        interval = min(limits.lease_ms, limits.pending_redispatch_ms) / 2 / 1000
        while not self._stopping.wait(interval):
            try:
                reconcile(self.services, self.dispatch)
            except Exception:
                log.exception("reconciler pass failed; trying again in %.1f s", interval)

    def _supervise_loop(self) -> None:
        slot = _Slot()
        try:
            while True:
                if not self._stopping.is_set():
                    self._keep_warm(slot)
                render_id = self._queue.get()
                if render_id is None:
                    return
                with self._lock:
                    self._waiting.discard(render_id)
                if self._stopping.is_set():
                    continue
                try:
                    self._run_one(render_id, slot)
                except Exception:
                    log.exception("supervising render %s failed", render_id)
        finally:
            slot.close()

    def _keep_warm(self, slot: _Slot) -> None:
        try:
            slot.ready(self._start_warm)
        except Exception:  # the next render tries again (and fails its render if it cannot)
            log.exception("could not start a render process")

    # -- one render ---------------------------------------------------------------------------

    def _run_one(self, render_id: str, slot: _Slot) -> None:
        with self.services.db.read_one() as connection:
            render = store.find(connection, render_id)
        if render is None or render.status != RenderStatus.PENDING:
            return  # cheaper than a job that would find the same
        warm = slot.ready(self._start_warm)
        token = uuid.uuid4().hex[:16]
        workdir = tempfile.mkdtemp(prefix="renderlab-render-")
        wake_r, wake_w = os.pipe()
        owner = lease_owner(token, warm.process.pid)
        job = _RenderProcess(render_id, warm.process, owner, warm.conn, wake_r, wake_w)
        try:
            with self._lock:
                self._running[render_id] = job
            with contextlib.suppress(OSError):  # it died between renders: its sentinel says so
                warm.conn.send((render_id, token, workdir))
            self._watch(job)
        finally:
            if job.stop_reason is not None or not warm.process.is_alive():
                slot.discard()  # killed or dead: the next render gets a fresh process
            with self._lock:
                self._running.pop(render_id, None)
            os.close(wake_r)
            os.close(wake_w)
            shutil.rmtree(workdir, ignore_errors=True)
        self._after_exit(job)

    def _start_warm(self) -> _Warm:
        """A new warm render process (it builds its services while the supervisor waits for
        the next render)."""
        assert self._processes is not None
        parent_conn, child_conn = self._processes.Pipe(duplex=True)
        process = self._processes.Process(
            target=child.serve_renders,
            args=(self.services.settings, self.services.limits, child_conn),
            name="renderlab-render",
            daemon=True,
        )
        with self._start_lock:  # not self._lock: dispatch (the API's thread) never waits on this
            process.start()
        child_conn.close()
        return _Warm(process, parent_conn)

    def _watch(self, job: _RenderProcess) -> None:
        """Wait for the process to end; kill it on cancel, timeout, shutdown, or if the
        database says the render is no longer its own (the reconciler acted)."""
        limits = self.services.limits
        timeout_s = limits.render_timeout_s
        check_every = limits.poll_interval_ms / 2 / 1000
        deadline = job.started + limits.worker_start_timeout_ms / 1000  # until it claims
        next_check = time.monotonic() + check_every
        watched: list[object] = [job.process.sentinel, job.conn, job.wake_r]
        while True:
            now = time.monotonic()
            until = min(deadline, next_check)
            if self._stop_deadline is not None:
                until = min(until, self._stop_deadline)
            ready = wait(watched, timeout=max(0.0, until - now))  # type: ignore[arg-type]
            if job.process.sentinel in ready:
                return
            if job.conn in ready:
                try:
                    message = job.conn.recv()
                except (EOFError, OSError):
                    watched.remove(job.conn)
                else:
                    if message[0] == child.DONE:
                        return
                    if message[0] == child.CLAIMED:
                        job.claimed = True
                        deadline = time.monotonic() + timeout_s
            if job.wake_r in ready:
                with contextlib.suppress(OSError):
                    os.read(job.wake_r, 64)
            now = time.monotonic()
            if job.cancelled:
                return self._kill(job, "cancelled")
            if now >= deadline:
                return self._kill(job, "timeout" if job.claimed else "start timeout")
            if self._stop_deadline is not None and now >= self._stop_deadline:
                return self._kill(job, "shutdown")
            if now >= next_check:
                next_check = now + check_every
                if job.claimed and not self._still_ours(job):
                    return self._kill(job, "gone")

    def _still_ours(self, job: _RenderProcess) -> bool:
        with self.services.db.read_one() as connection:
            render = store.find(connection, job.render_id)
        held = render is not None and render.lease_owner == job.owner
        return held and render is not None and render.status == RenderStatus.RENDERING

    @staticmethod
    def _kill(job: _RenderProcess, reason: str) -> None:
        log.info("stopping render %s (%s): killing pid %s", job.render_id, reason, job.process.pid)
        job.stop_reason = reason
        job.process.kill()
        job.process.join()

    def _after_exit(self, job: _RenderProcess) -> None:
        """After the process ended: make sure the render is not left where nobody finishes it."""
        services = self.services
        with services.db.read_one() as connection:
            render = store.find(connection, job.render_id)
        if render is None:
            return
        status, holder = render.status, render.lease_owner
        if status in TERMINAL_STATUSES:
            return
        shutting_down = job.stop_reason == "shutdown" or self._stopping.is_set()
        if status == RenderStatus.RENDERING:
            if holder != job.owner:
                return  # another worker holds it now
            if job.stop_reason == "timeout":
                timed_out = failures.timed_out(services.limits)
                lifecycle.fail(services, job.render_id, timed_out, owner=job.owner)
            elif shutting_down:
                lifecycle.release(services, job.render_id, owner=job.owner, count_attempt=False)
            else:
                log.warning(
                    "render process %s for render %s ended with exit code %s",
                    job.process.pid,
                    job.render_id,
                    job.process.exitcode,
                )
                released = lifecycle.release(services, job.render_id, owner=job.owner)
                if released is not None and released.status == RenderStatus.PENDING:
                    self.dispatch(job.render_id)
            return
        # Pending: never claimed by this process, or handed back while it ran.
        if shutting_down:
            return
        if not job.claimed and job.process.exitcode not in (0, None):
            log.error(
                "render process for render %s died before starting (exit code %s)",
                job.render_id,
                job.process.exitcode,
            )
            lifecycle.fail(services, job.render_id, failures.worker_lost())
            return
        self.dispatch(job.render_id)
