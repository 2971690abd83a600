"""Helpers for the API tests: an app on the conftest services, tokens, a real HTTP server on
loopback, and a JWKS endpoint served by a real HTTP server (no mocks of our own parts)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from renderlab.api import create_app
from renderlab.api.context import ApiContext
from renderlab.services import Services
from renderlab.storage import open_storage

STORAGE_SECRET = b"test-storage-secret-0123456789abcdef"


def attach_local_storage(services: Services) -> None:
    """Give the conftest services a real local storage under their data dir."""
    settings = services.settings
    services.storage_factory = lambda: open_storage(
        settings.resolved_storage_url(),
        secret=STORAGE_SECRET,
        public_url=settings.resolved_public_url(),
    )


def context(app: FastAPI) -> ApiContext:
    return app.state.ctx


def bearer(app: FastAPI, name: str) -> dict[str, str]:
    """Authorization header of a zero-setup token for ``name``."""
    token, _ = context(app).auth.issue(name)
    return {"Authorization": f"Bearer {token}"}


def user_id_of(app: FastAPI, name: str) -> str:
    """The row id of zero-setup user ``name`` (created on first sight)."""
    from renderlab.api.auth import Identity

    ctx = context(app)
    return ctx.users.resolve(Identity(f"renderlab|{name}", None, name))


class Api:
    """A TestClient bound to one user, for short test bodies."""

    def __init__(self, app: FastAPI, name: str, client: TestClient | None = None) -> None:
        self.app = app
        self.name = name
        self.client = client or TestClient(app, raise_server_exceptions=False)
        self.headers = bearer(app, name)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.post(url, headers=headers, **kwargs)


def make_api(services: Services) -> FastAPI:
    return create_app(services)


# -- a real server on loopback ----------------------------------------------------------------


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread on a free loopback port; yields the base URL."""
    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


# -- an identity provider: an RSA key and its JWKS on loopback ---------------------------------


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class IdentityProvider:
    """Signs RS256 tokens like Clerk/Auth0 would; its public keys are served as JWKS."""

    issuer: str
    audience: str
    key: rsa.RSAPrivateKey
    kid: str = "test-key-1"
    jwks_url: str = ""
    fetches: int = 0

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.kid,
                    "n": _b64(numbers.n),
                    "e": _b64(numbers.e),
                }
            ]
        }

    def token(
        self,
        sub: str = "user_2abc",
        *,
        expires_in: int = 600,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "exp": now + expires_in,
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        headers = {"kid": kid or self.kid}
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers=headers)


@contextmanager
def identity_provider(
    issuer: str = "https://clerk.test", audience: str = "renderlab"
) -> Iterator[IdentityProvider]:
    """An IdentityProvider whose JWKS document is served at ``jwks_url`` by a real HTTP server."""
    provider = IdentityProvider(
        issuer, audience, rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            provider.fetches += 1
            body = json.dumps(provider.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    provider.jwks_url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


# -- Server-Sent Events -----------------------------------------------------------------------


@dataclass(frozen=True)
class SSEMessage:
    """One parsed SSE block: an event with JSON data, or a comment line (``event == ""``)."""

    event: str
    data: Any
    received_at: float


def sse_messages(response: Any) -> Iterator[SSEMessage]:
    """Parse an ``httpx`` streaming response into events and comments as they arrive."""
    event, data = "message", []
    for line in response.iter_lines():
        if line.startswith(":"):
            yield SSEMessage("", line[1:].strip(), time.time())
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield SSEMessage(event, json.loads("\n".join(data)), time.time())
            event, data = "message", []
