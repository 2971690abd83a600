"""On SQLite the API starts a render on its event loop when no other writer holds the database
(``Database.write(wait=False)``), and hands it to a database thread when one does: the loop
never waits on the writers' queue, whoever holds it (a render worker, another API process)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from renderlab.db import Database, WriterBusy, upgrade
from renderlab.models import User
from tests.factories import PROPS
from tests.serve_helpers import serve

# Holds the writers' queue of the database at argv[1] until a line arrives on stdin.
HOLDER = """
import sys
from pathlib import Path
from renderlab.db import WriterQueue
with WriterQueue(Path(sys.argv[1] + ".writers")):
    print("held", flush=True)
    sys.stdin.readline()
"""


@contextmanager
def held_by_another_process(database: Path) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        if holder.poll() is None:
            holder.stdin.write("\n")
            holder.stdin.flush()
        holder.wait(10)


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(10)


def test_a_write_that_must_not_wait_is_refused_before_it_runs(tmp_path: Path) -> None:
    path = tmp_path / "renderlab.db"
    upgrade(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    ran = []
    with held_by_another_process(path) as holder:
        with pytest.raises(WriterBusy), db.write(wait=False):
            ran.append("another process")
        release(holder)
    with db.write(wait=False) as connection:  # free now: it runs
        connection.execute(User.__table__.select())
        ran.append("free")
    inside, leave = threading.Event(), threading.Event()

    def hold_in_a_thread() -> None:
        with db.write():
            inside.set()
            leave.wait(30)

    thread = threading.Thread(target=hold_in_a_thread)
    thread.start()
    assert inside.wait(30)
    with pytest.raises(WriterBusy), db.write(wait=False):
        ran.append("another thread")
    leave.set()
    thread.join()
    assert ran == ["free"]
    db.dispose()


def test_a_start_while_another_process_writes_does_not_block_the_event_loop(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with serve(data) as server, httpx.Client(base_url=server.base, timeout=60) as client:
        token = client.post("/v1/auth/token", json={"name": "alice"}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        small = {"width": 160, "height": 90}
        body = {"animation_props": {**PROPS, "duration_in_frames": 30}, **small}
        first = client.post("/v1/renders", json=body, headers=headers)
        assert first.status_code == 202, first.text  # started inline: the queue was free
        with held_by_another_process(data / "renderlab.db") as holder:
            # The request is in the server's socket before the reads below are sent.
            waiting = send_request(server.port, "/v1/renders", body, headers)
            # While the start waits for the queue (on a database thread), the loop answers.
            read = httpx.get(f"{server.base}/v1/renders/{first.json()['id']}", headers=headers)
            health = httpx.get(f"{server.base}/healthz")
            assert read.status_code == 200 and health.status_code == 200
            release(holder)
            status, second = read_response(waiting)
        assert status == 202, second
        assert second["id"] != first.json()["id"]


def send_request(port: int, path: str, body: dict, headers: dict[str, str]) -> socket.socket:
    """POST ``body`` on a connection of its own, written whole before returning."""
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(payload)}", "Connection: close", "", ""]
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall("\r\n".join(lines).encode() + payload)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict]:
    with sock:
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)
