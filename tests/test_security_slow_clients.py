"""Slow and stuck clients must not starve the others: one event loop serves every stream, so a
client that opens SSE streams and never reads, or one that never finishes its request headers
(slowloris), must cost a socket each and nothing else. Over real HTTP on loopback."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx

from renderlab import store
from renderlab.api import create_app
from renderlab.clock import now_ms
from renderlab.config import Settings
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.services import Services
from tests.api_helpers import bearer, live_server, sse_messages, user_id_of
from tests.factories import make_generation, make_render

STUCK_STREAMS = 60
SLOWLORIS = 30


def open_raw(base: str, request: bytes) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up fast, then stall
    sock.sendall(request)
    return sock


def test_stuck_streams_and_slowloris_do_not_block_other_users(
    tmp_path: Path, sqlite_template: Path
) -> None:
    path = tmp_path / "slow.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(f"sqlite:///{path}")
    services = Services(
        settings=Settings(data_dir=tmp_path / "data", database_url=db.url),
        limits=Limits(sse_keepalive_s=0.2),  # stuck streams get written to all the time
        db=db,
    )
    app = create_app(services)
    mallory = user_id_of(app, "mallory")
    alice = user_id_of(app, "alice")
    stuck_render = make_render(db, mallory, make_generation(db, mallory))
    render_id = make_render(db, alice, make_generation(db, alice))
    token = bearer(app, "mallory")["Authorization"]
    held: list[socket.socket] = []
    with live_server(app) as base:
        try:
            for _ in range(STUCK_STREAMS):
                held.append(
                    open_raw(
                        base,
                        f"GET /v1/renders/{stuck_render}/events HTTP/1.1\r\nHost: x\r\n"
                        f"Authorization: {token}\r\n\r\n".encode(),
                    )
                )
            for _ in range(SLOWLORIS):
                held.append(open_raw(base, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "))
            time.sleep(1.0)  # let keep-alive comments pile up unread

            def finish() -> None:
                time.sleep(0.5)
                with db.transaction() as session:
                    store.update(session, render_id, now=now_ms(), status="rendering", progress=50)
                with db.transaction() as session:
                    store.update(
                        session,
                        render_id,
                        now=now_ms(),
                        status="complete",
                        output_url="https://x.test/v",
                    )

            with httpx.Client(base_url=base, timeout=5) as client:
                started = time.monotonic()
                assert client.get("/healthz").status_code == 200
                assert time.monotonic() - started < 1.0
                thread = threading.Thread(target=finish)
                started = time.monotonic()
                with client.stream(
                    "GET", f"/v1/renders/{render_id}/events", headers=bearer(app, "alice")
                ) as response:
                    assert response.status_code == 200
                    thread.start()
                    statuses = [m.data["status"] for m in sse_messages(response) if m.event]
                thread.join()
                assert statuses[-1] == "complete"
                assert time.monotonic() - started < 3.0
        finally:
            for sock in held:
                sock.close()
