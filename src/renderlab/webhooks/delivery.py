"""One delivery attempt of one event, and when the next one is due.

An attempt POSTs the event's body with fresh Standard Webhooks headers (same ``webhook-id``,
a new timestamp and signature) to the address the SSRF check just approved, follows no
redirect, and is over within ``timeout_s`` (connect, send and answer together). A 2xx is a
success; any other status, a refusal, a connection error or the timeout is a failure to retry.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TypedDict, Unpack

import httpx

from renderlab.webhooks.events import Event
from renderlab.webhooks.signing import sign_headers
from renderlab.webhooks.ssrf import InvalidWebhookURL, Target, resolve_target

USER_AGENT = "renderlab-webhooks/1"
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None
    ok: bool


def next_attempt_at(attempt_no: int, now: int, schedule: tuple[int, ...]) -> int | None:
    """When attempt ``attempt_no + 1`` is due (epoch ms) after attempt ``attempt_no`` (1 = the
    first try) failed at ``now`` (epoch ms), or None when the schedule is spent: an event gets
    ``1 + len(schedule)`` attempts, ``schedule[i]`` seconds after attempt ``i + 1``."""
    if attempt_no < 1:
        raise ValueError("attempt_no counts from 1")
    if attempt_no > len(schedule):
        return None
    return now + schedule[attempt_no - 1] * 1000


def _failure(error: str) -> Attempt:
    return Attempt(None, error[:MAX_ERROR_CHARS], False)


async def _post(
    target: Target, body: bytes, headers: dict[str, str], transport: httpx.AsyncBaseTransport | None
) -> int:
    # trust_env=False: an HTTP(S)_PROXY from the environment would connect elsewhere than the
    # checked address. The URL names the address; Host and SNI (and so the certificate check)
    # name the host.
    async with httpx.AsyncClient(
        transport=transport, follow_redirects=False, trust_env=False, timeout=None
    ) as client:
        request = client.build_request(
            "POST",
            target.pinned_url(),
            content=body,
            headers={**headers, "Host": target.host_header},
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )
        response = await client.send(request, stream=True)
        await response.aclose()  # the status is the answer; the body is not read
        return response.status_code


def _headers(event: Event, body: bytes, secret: str, now_s: int | None) -> dict[str, str]:
    """The signed headers of one attempt: a fresh timestamp (or ``now_s``) each time."""
    return {
        **sign_headers(event.id, int(now_s if now_s is not None else time.time()), body, secret),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


async def deliver_async(
    event: Event,
    url: str,
    secret: str,
    *,
    allow_private: bool = False,
    timeout_s: float = 10.0,
    now_s: int | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Attempt:
    """Make one attempt; never raises for anything the receiver or the network does. The
    name lookup of the delivery-time SSRF check counts against ``timeout_s`` too."""
    body = event.body()
    headers = _headers(event, body, secret, now_s)
    try:
        async with asyncio.timeout(timeout_s):
            target = await asyncio.to_thread(resolve_target, url, allow_private)
            status = await _post(target, body, headers, transport)
    except InvalidWebhookURL as exc:
        return _failure(f"refused: {exc.reason}")
    except TimeoutError:
        return _failure(f"no answer within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return _failure(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    ok = 200 <= status < 300
    return Attempt(status, None if ok else f"HTTP {status}", ok)


class DeliverOptions(TypedDict, total=False):
    """The keywords :func:`deliver` passes on (:func:`deliver_async`'s defaults apply)."""

    allow_private: bool
    timeout_s: float
    now_s: int | None


def deliver(event: Event, url: str, secret: str, **options: Unpack[DeliverOptions]) -> Attempt:
    """:func:`deliver_async` for threads and Celery tasks (not inside a running event loop)."""
    return asyncio.run(deliver_async(event, url, secret, **options))
