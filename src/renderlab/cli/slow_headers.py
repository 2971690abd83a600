"""A deadline on request headers for ``renderlab serve``: uvicorn has none.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but once a client
has sent the first byte of a request it waits for the rest of the headers forever: 300
connections trickling one header byte at a time were all held for 40 s and more (issue 17).
Each costs a socket and a file descriptor, and enough of them exhaust the process's.

These protocols are uvicorn's own HTTP protocols (httptools when installed, else h11, as
uvicorn's ``auto`` picks) with one timer added: armed when a connection opens and when the
first bytes of a keep-alive connection's next request arrive, disarmed when the headers are
complete (uvicorn then starts a request cycle). If it fires first, the connection is closed.
Bodies and responses are not affected: an upload or a live-progress stream may take as long as
it needs. The bound is ``RENDERLAB_HEADER_TIMEOUT_S`` (default 10 s), read where the protocol
is built, so the ``--processes`` children, which import this by name, apply the same one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from renderlab.config import get_settings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


class HeaderDeadline:
    """Mixin for a uvicorn HTTP protocol class: close connections whose headers are late."""

    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout_s = get_settings().header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None
        self._seen_cycle: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._between_requests():
            self._arm_header_timer()  # the first bytes of the next request on this connection
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not self._seen_cycle:  # a new request's headers are complete
            self._seen_cycle = self.cycle
            self._disarm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def _between_requests(self) -> bool:
        return self.cycle is None or bool(self.cycle.response_complete)

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self._header_timeout_s, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        late = self.cycle is self._seen_cycle and self._between_requests()
        if late and not self.transport.is_closing():
            self.transport.close()


class H11HeaderDeadline(HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with a header deadline."""


if HttpToolsProtocol is not None:

    class HttpToolsHeaderDeadline(HeaderDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol with a header deadline."""

    HeaderDeadlineProtocol: type[asyncio.Protocol] = HttpToolsHeaderDeadline
else:  # pragma: no cover
    HeaderDeadlineProtocol = H11HeaderDeadline
