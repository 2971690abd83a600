"""Verify a webhook renderlab sent, in the receiving backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from renderlab.webhooks.signing import verify


def verify_webhook(body: bytes, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    """The event (``{"type", "timestamp", "data"}``) if ``body`` was signed by renderlab with
    ``secret`` in the last 5 minutes; else :class:`WebhookVerificationError`.

    Pass the raw body bytes, before any JSON parsing: the signature covers them exactly.
    """
    return verify(body, headers, secret)
