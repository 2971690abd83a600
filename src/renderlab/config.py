"""Deployment settings: where data lives and which engines renderlab talks to.

Limits (quota, caps, timeouts) live in :mod:`renderlab.limits`; this module holds only the
wiring that differs between a laptop and a cluster. Both are read from ``RENDERLAB_*``
environment variables once and passed down.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from renderlab.env import EnvSettings

AuthMode = Literal["dev", "hs256", "jwks"]


class Settings(EnvSettings):
    data_dir: Path = Path("./renderlab-data")
    auth: AuthMode | None = None
    """``RENDERLAB_AUTH``; unset means :attr:`auth_mode` picks it from what is configured."""
    database_url: str | None = None
    storage_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    broker_url: str | None = None
    public_url: str | None = None
    jwt_secret: str | None = None
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=256)
    cors_origins: list[str] = Field(default_factory=list)
    storage_secret: str | None = None
    # Operations (docs/operations.md): ``GET /metrics`` on or off, and the log line format.
    metrics: bool = True
    log_format: Literal["text", "json"] = "text"
    # Webhooks (renderlab.webhooks): the Standard Webhooks signing secret (``whsec_`` + base64;
    # generated into the data dir when unset) and whether a webhook URL may point at loopback or
    # a private network (tests, one-machine setups; off by default: SSRF).
    webhook_secret: str | None = None
    webhook_allow_private: bool = False
    header_timeout_s: float = Field(10.0, gt=0, le=600)
    """``RENDERLAB_HEADER_TIMEOUT_S``: a connection's request headers must be complete this
    long after it opened (or after its previous response), or ``serve`` closes it."""

    @property
    def auth_mode(self) -> AuthMode:
        """``RENDERLAB_AUTH``, or: ``jwks`` with a JWKS URL, ``hs256`` with a configured secret,
        else ``dev`` (sign in with any name: one person on one machine)."""
        if self.auth is not None:
            return self.auth
        if self.jwks_url:
            return "jwks"
        return "hs256" if self.jwt_secret else "dev"

    @property
    def auth_explicit(self) -> bool:
        """Whether ``RENDERLAB_AUTH`` was set (``dev`` on a public address needs that)."""
        return self.auth is not None

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'renderlab.db'}"

    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.data_path / "storage").as_uri()

    def resolved_public_url(self, host: str = "127.0.0.1", port: int = 8000) -> str:
        return (self.public_url or f"http://{host}:{port}").rstrip("/")

    @property
    def is_embedded(self) -> bool:
        """No broker configured: renders run in worker processes of ``renderlab serve``."""
        return not self.broker_url


def _token_secret() -> str:
    return secrets.token_urlsafe(48)


def read_or_create_secret(
    data_dir: Path, name: str, make: Callable[[], str] = _token_secret
) -> bytes:
    """A secret kept in the data dir, made on first use, so zero-setup mode needs no config.

    Written with O_EXCL so two processes starting together agree on one secret; ``make``
    gives a new secret its format (the webhook secret is ``whsec_`` + base64).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip().encode()
    value = make()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value.encode()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
