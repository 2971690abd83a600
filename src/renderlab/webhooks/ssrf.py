"""Refuse webhook URLs that point into renderlab's own network (SSRF).

A URL is checked at submit and again at every delivery (DNS can change). The host is resolved
with ``getaddrinfo`` (so every form a resolver accepts, ``2130706433``, ``0x7f000001``,
``127.1``, ``[::ffff:127.0.0.1]``, is judged by the address it really means) and refused if
*any* of its addresses is not public. Nothing here opens a connection: the delivery connects
to :attr:`Target.address`, the address that was checked, so a DNS answer that changes between
check and connect (rebinding) cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_CHARS = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidWebhookURL(ValueError):
    """The API's 422 ``invalid_webhook_url``; ``reason`` says what is wrong, for the message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """Where one delivery goes: the URL as given, and the checked address to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address (sent with ``Host``/SNI)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        netloc = f"{literal}:{self.port}"
        return parts._replace(netloc=netloc).geturl()


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` may not receive webhooks, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return refusal(embedded)
    for kind in ("loopback", "unspecified", "link_local", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:
        return "non-public"
    return None


def _parse(url: str) -> tuple[SplitResult, str, int]:
    if not isinstance(url, str) or len(url) > MAX_URL_CHARS:
        raise InvalidWebhookURL(f"the URL must be a string of at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookURL(f"the URL does not parse: {exc}") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise InvalidWebhookURL("the URL must be http or https")
    host = parts.hostname
    if not host:
        raise InvalidWebhookURL("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookURL("the URL must not carry credentials")
    return parts, host, port or _DEFAULT_PORTS[parts.scheme]


def _addresses(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise InvalidWebhookURL(f"the host {host!r} does not resolve") from None
    found = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not found:
        raise InvalidWebhookURL(f"the host {host!r} does not resolve")
    return found


def resolve_target(url: str, allow_private: bool = False) -> Target:
    """The checked target of ``url``, or :class:`InvalidWebhookURL`. Resolves, never connects."""
    parts, host, port = _parse(url)
    addresses = _addresses(host, port)
    if not allow_private:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise InvalidWebhookURL(
                    f"the host {host!r} is or resolves to a {reason} address ({address})"
                )
    return Target(url, parts.scheme, host, port, addresses[0])


def check_webhook_url(url: str, allow_private: bool = False) -> None:
    """Raise :class:`InvalidWebhookURL` unless ``url`` may receive webhooks (the submit check)."""
    resolve_target(url, allow_private)
