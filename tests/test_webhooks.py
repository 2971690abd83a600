"""Webhook core: Standard Webhooks signatures (interop with the reference package both ways),
the secret in the data dir, the retry schedule, the SSRF check (no traffic) and one delivery
attempt to a real receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import socket
import stat
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

from renderlab.config import Settings
from renderlab.limits import Limits
from renderlab.webhooks import (
    InvalidWebhookURL,
    WebhookVerificationError,
    check_webhook_url,
    deliver,
    deliver_async,
    make_event,
    new_secret,
    next_attempt_at,
    sign_headers,
    verify,
    webhook_secret,
)
from tests.webhook_helpers import receiver, self_signed

RENDER = {"id": "01J0000000000000000000000A", "status": "complete", "metadata": {"k": "é"}}
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000)


def test_our_signature_is_the_reference_one_and_verifies_both_ways() -> None:
    secret = new_secret()
    event = make_event("render.completed", RENDER, 1_700_000_000_000)
    body = event.body()
    now = int(time.time())
    headers = sign_headers(event.id, now, body, secret)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{event.id}.{now}.".encode() + body, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    assert Webhook(secret).verify(body, headers) == event.payload()
    library = Webhook(secret)
    signature = library.sign(event.id, datetime.fromtimestamp(now, tz=UTC), body.decode())
    theirs = {"webhook-id": event.id, "webhook-timestamp": str(now), "webhook-signature": signature}
    assert verify(body, theirs, secret)["data"] == RENDER
    assert event.payload()["timestamp"] == "2023-11-14T22:13:20.000Z"


@pytest.mark.parametrize(
    "change",
    ["body", "secret", "no_comma", "bad_base64", "old", "missing", "not_utf8"],
)
def test_verify_refuses_anything_not_signed_with_the_secret(change: str) -> None:
    secret = new_secret()
    body = make_event("render.failed", RENDER, 0).body()
    headers = sign_headers("msg_1", int(time.time()), body, secret)
    if change == "body":
        body = body.replace(b"failed", b"complete")
    elif change == "secret":
        secret = new_secret()
    elif change == "no_comma":
        headers["webhook-signature"] = "v1abc"
    elif change == "bad_base64":
        headers["webhook-signature"] = "v1,%%%"
    elif change == "old":
        headers = sign_headers("msg_1", int(time.time()) - 3600, body, secret)
    elif change == "missing":
        del headers["webhook-id"]
    else:
        body = b"\xff" + body
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, secret)


def test_the_secret_is_generated_once_into_the_data_dir_readable_by_owner_only(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = webhook_secret(settings)
    assert first.startswith("whsec_") and len(base64.b64decode(first[6:])) == 32
    assert webhook_secret(Settings(data_dir=tmp_path / "data")) == first
    mode = stat.S_IMODE(os.stat(tmp_path / "data" / "webhook-secret").st_mode)
    assert mode == 0o600
    given = new_secret()
    assert webhook_secret(Settings(data_dir=tmp_path / "x", webhook_secret=given)) == given
    for bad in ("plain", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError, match="RENDERLAB_WEBHOOK_SECRET"):
            webhook_secret(Settings(data_dir=tmp_path / "x", webhook_secret=bad))


def test_next_attempt_follows_the_schedule_then_stops() -> None:
    now = 1_000_000
    assert next_attempt_at(1, now, SCHEDULE) == now + 5_000
    assert next_attempt_at(6, now, SCHEDULE) == now + 36_000_000
    assert next_attempt_at(7, now, SCHEDULE) is None
    with pytest.raises(ValueError):
        next_attempt_at(0, now, SCHEDULE)


def test_schedule_and_allowance_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Limits().webhook_retry_schedule_s == SCHEDULE
    monkeypatch.setenv("RENDERLAB_WEBHOOK_RETRY_SCHEDULE_S", "1, 2,3")
    monkeypatch.setenv("RENDERLAB_WEBHOOK_ALLOW_PRIVATE", "true")
    assert Limits().webhook_retry_schedule_s == (1, 2, 3)
    assert Settings().webhook_allow_private is True
    for bad in ("1,x", "", "0", "-5", "1.5", str(8 * 86400)):
        monkeypatch.setenv("RENDERLAB_WEBHOOK_RETRY_SCHEDULE_S", bad)
        with pytest.raises(ValidationError, match="webhook_retry_schedule_s"):
            Limits()


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connect() during the test fails it: the check must resolve, never connect."""

    def refuse(*_args: object) -> None:
        raise AssertionError("the SSRF check opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


REFUSED = [
    "http://127.0.0.1/hook",
    "http://localhost:8080/hook",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://127.1/",
    "http://0177.0.0.1/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://100.64.0.1/",
    "http://[2002:7f00:1::]/",
]


@pytest.mark.parametrize("url", REFUSED)
@pytest.mark.usefixtures("no_connections")
def test_private_and_odd_forms_are_refused_without_traffic(url: str) -> None:
    with pytest.raises(InvalidWebhookURL, match="address"):
        check_webhook_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "http:///path", "javascript:alert(1)", "http://u:p@1.1.1.1/"]
)
@pytest.mark.usefixtures("no_connections")
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidWebhookURL):
        check_webhook_url(url, allow_private=True)


@pytest.mark.usefixtures("no_connections")
def test_public_literals_pass_and_private_pass_with_the_allowance() -> None:
    check_webhook_url("https://1.1.1.1:8443/hook?x=1")
    check_webhook_url("http://[2606:4700:4700::1111]/")
    check_webhook_url("http://localhost:9/", allow_private=True)


def test_an_attempt_posts_a_signed_event_to_the_checked_address() -> None:
    secret = new_secret()
    event = make_event("render.completed", RENDER, 0)
    with receiver() as hook:
        port = hook.url.split(":")[2].split("/")[0]
        url = hook.url.replace("127.0.0.1", "localhost")
        attempt = deliver(event, url, secret, allow_private=True)
        assert attempt.ok and attempt.status_code == 200 and attempt.error is None
        (got,) = hook.requests
    assert got.path == "/hooks/renderlab"
    assert got.headers["Host"] == f"localhost:{port}"
    assert got.headers["Content-Type"] == "application/json"
    assert Webhook(secret).verify(got.body, got.headers) == event.payload()
    assert got.headers["webhook-id"] == event.id


def test_an_attempt_to_a_private_address_is_refused_without_the_allowance() -> None:
    with receiver() as hook:
        attempt = deliver(make_event("render.failed", RENDER, 0), hook.url, new_secret())
        assert not attempt.ok and attempt.status_code is None
        assert "loopback" in (attempt.error or "")
        assert hook.requests == []


def test_failures_redirects_and_silence_are_failed_attempts() -> None:
    event = make_event("render.failed", RENDER, 0)
    secret = new_secret()
    with receiver([500]) as hook:
        assert deliver(event, hook.url, secret, allow_private=True).error == "HTTP 500"
    with receiver([302], redirect_to="http://127.0.0.1:9/elsewhere") as hook:
        attempt = deliver(event, hook.url, secret, allow_private=True)
        assert (attempt.ok, attempt.status_code) == (False, 302)
        assert len(hook.requests) == 1
    with receiver(hold=threading.Event()) as hook:
        started = time.monotonic()
        attempt = deliver(event, hook.url, secret, allow_private=True, timeout_s=0.5)
        assert time.monotonic() - started < 5
        assert not attempt.ok and "no answer within 0.5 s" in (attempt.error or "")
    with receiver() as hook:
        closed = hook.url
    attempt = deliver(event, closed, secret, allow_private=True)
    assert not attempt.ok and attempt.status_code is None and attempt.error


@pytest.mark.parametrize("certified", ["localhost", "elsewhere.test"])
def test_https_connects_to_the_checked_address_with_the_hosts_name(
    tmp_path: Path, certified: str
) -> None:
    """The connection goes to the resolved 127.0.0.1 while TLS names ``localhost`` (SNI, and
    the certificate is checked against it): a certificate for another name is refused."""
    server_tls, client_tls = self_signed(tmp_path, certified)
    event = make_event("render.completed", RENDER, 0)
    with receiver(tls=server_tls) as hook:
        url = hook.url.replace("127.0.0.1", "localhost")
        transport = httpx.AsyncHTTPTransport(verify=client_tls)
        attempt = asyncio.run(
            deliver_async(event, url, new_secret(), allow_private=True, transport=transport)
        )
        if certified == "localhost":
            assert attempt.ok, attempt
            assert hook.server_names == ["localhost"]
            assert hook.requests[0].headers["Host"].startswith("localhost:")
        else:
            assert not attempt.ok and "CERTIFICATE_VERIFY_FAILED" in (attempt.error or "")
            assert hook.requests == []
