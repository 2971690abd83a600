"""Clients that trickle their request headers are cut off: a real ``renderlab serve`` closes
every connection whose headers are not complete within ``RENDERLAB_HEADER_TIMEOUT_S``, on a
new connection and on the next request of a keep-alive one, while clients that send their
headers in time are answered. (uvicorn itself has no such bound: 300 trickling connections were
held for 40 s and more.)"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.serve_helpers import Server, serve

TIMEOUT_S = 1.0
SLACK_S = 8.0  # a busy 2-core machine: the bound, not a speed goal
TRICKLERS = 300
TRICKLE_EVERY_S = 0.25


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.setblocking(False)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (what it sent before closing is read away)."""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def trickle_until_closed(socks: list[socket.socket], deadline: float) -> list[socket.socket]:
    """Send one more header byte to each open socket every TRICKLE_EVERY_S; the still open."""
    open_ = list(socks)
    while open_ and time.monotonic() < deadline:
        still = []
        for sock in open_:
            if closed_by_server(sock):
                continue
            try:
                sock.send(b"a")
                still.append(sock)
            except OSError:
                continue
        open_ = still
        time.sleep(TRICKLE_EVERY_S)
    return open_


def test_trickled_headers_are_cut_off_within_the_bound(tmp_path: Path) -> None:
    env = {"RENDERLAB_HEADER_TIMEOUT_S": str(TIMEOUT_S)}
    with serve(tmp_path / "data", **env) as server:
        socks = [connect(server) for _ in range(TRICKLERS)]
        try:
            for sock in socks:
                sock.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            started = time.monotonic()
            left = trickle_until_closed(socks, started + TIMEOUT_S + SLACK_S)
            assert left == [], f"{len(left)} of {TRICKLERS} trickling connections still open"
            # A keep-alive connection's next request is bounded too.
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            sock.setblocking(False)
            sock.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            assert trickle_until_closed([sock], time.monotonic() + TIMEOUT_S + SLACK_S) == []
            # Headers sent in pieces but in time are answered.
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            for piece in (b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
                sock.sendall(piece)
                time.sleep(TIMEOUT_S / 5)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            sock.close()
        finally:
            for sock in socks:
                sock.close()
