"""Standard Webhooks signatures, by the ``standardwebhooks`` package (its reference
implementation), so what renderlab signs is what every receiver library verifies.

``webhook-signature`` is ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed with the
base64-decoded part of the ``whsec_...`` secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook
from standardwebhooks.webhooks import WebhookVerificationError as _LibraryError

from renderlab.config import Settings, read_or_create_secret

SECRET_FILE = "webhook-secret"
SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24


class WebhookVerificationError(ValueError):
    """The headers are missing or malformed, the timestamp is too far off, or no signature
    matches: the request did not come from renderlab (or was changed on the way)."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ``ValueError`` naming the variable when malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("RENDERLAB_WEBHOOK_SECRET must start with whsec_")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("RENDERLAB_WEBHOOK_SECRET must be whsec_ followed by base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"RENDERLAB_WEBHOOK_SECRET must decode to {MIN_SECRET_BYTES}+ bytes")
    return key


def webhook_secret(settings: Settings) -> str:
    """The signing secret: ``RENDERLAB_WEBHOOK_SECRET``, else the one generated (mode 0600)
    into the data dir, the same file for ``serve``, workers and ``renderlab webhook-secret``."""
    value = settings.webhook_secret or (
        read_or_create_secret(settings.data_path, SECRET_FILE, new_secret).decode()
    )
    secret_key(value)
    return value


def sign_headers(msg_id: str, timestamp_s: int, body: bytes, secret: str) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    moment = datetime.fromtimestamp(timestamp_s, tz=UTC)
    signature = Webhook(secret_key(secret)).sign(msg_id, moment, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": signature,
    }


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    """The event, if ``body`` and ``headers`` were signed with ``secret`` within 5 minutes.

    Every failure, including the malformed headers the library itself trips over (a signature
    without a comma, bad base64, a body that is not UTF-8 or not JSON), is a
    :class:`WebhookVerificationError`.
    """
    try:
        event = Webhook(secret).verify(body, dict(headers.items()))
    except (
        _LibraryError,
        EmptyWebhookSecretError,
        ValueError,
        TypeError,
        binascii.Error,
        json.JSONDecodeError,
    ) as exc:
        raise WebhookVerificationError(str(exc) or "invalid webhook") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("the webhook body is not a JSON object")
    return event
