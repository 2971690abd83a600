"""SQLite writers of several processes queue on ``db.WriterQueue`` (a file lock), not on
SQLite's busy handler, whose sleeps grow to 100 ms: the next writer starts the moment the
previous one is done, whichever process it is in."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import text

from renderlab.db import Database, WriterQueue

HOLD_S = 0.5
HOLDER = f"""
import sys, time
from pathlib import Path

from sqlalchemy import text
from renderlab.db import WriterQueue
queue = WriterQueue(Path(sys.argv[1]))
with queue:
    print("held", flush=True)
    time.sleep({HOLD_S})
"""


def test_a_writer_in_another_process_waits_for_the_lock_and_gets_it_at_once(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "renderlab.db.writers"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    with WriterQueue(lock):
        waited = time.monotonic() - started
    holder.wait(10)
    assert 0.2 < waited < HOLD_S + 0.3, waited


def test_threads_of_one_process_queue_too(tmp_path: Path) -> None:
    queue = WriterQueue(tmp_path / "x.writers")
    inside = 0
    most = 0
    guard = threading.Lock()

    def write() -> None:
        nonlocal inside, most
        for _ in range(50):
            with queue:
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0005)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1


def test_a_file_database_writes_through_the_queue_beside_it(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'renderlab.db'}")
    with db.write() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    assert (tmp_path / "renderlab.db.writers").exists()
    db.dispose()


def test_a_forked_child_does_not_inherit_a_held_queue(tmp_path: Path) -> None:
    """A Celery pool process is forked from a parent whose reconciler thread may be writing:
    the child must not wait forever on a lock held by a thread it does not have."""
    queue = WriterQueue(tmp_path / "x.writers")
    with queue:  # held by this thread while the child is forked
        pid = os.fork()
        if pid == 0:  # the child: take the queue and leave, or hang (and be killed below)
            try:
                with queue:
                    pass
            finally:
                os._exit(0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError("the forked child waited on its parent's lock")
    assert os.waitstatus_to_exitcode(status) == 0
