"""A loopback TCP proxy that cuts its first connection after the first Server-Sent Event, so
a client following a render's stream has to reconnect."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass


@dataclass
class CuttingProxy:
    url: str
    connections: int = 0


def _pipe(source: socket.socket, sink: socket.socket, cut_after_event: bool) -> None:
    seen = b""
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
            seen += chunk
            if cut_after_event and b"event: render" in seen and seen.rstrip(b"\r\n") != seen:
                start = seen.index(b"event: render")
                if b"\n\n" in seen[start:]:
                    break
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


@contextmanager
def cutting_proxy(upstream_port: int) -> Iterator[CuttingProxy]:
    listener = socket.create_server(("127.0.0.1", 0))
    proxy = CuttingProxy(f"http://127.0.0.1:{listener.getsockname()[1]}")

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            proxy.connections += 1
            upstream = socket.create_connection(("127.0.0.1", upstream_port))
            first = proxy.connections == 1
            threading.Thread(target=_pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=_pipe, args=(upstream, client, first), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        listener.close()
