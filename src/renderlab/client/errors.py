"""Typed errors of the client: every non-2xx answer in the contract's error shape."""

from __future__ import annotations

from typing import Any

import httpx

from renderlab.webhooks.signing import WebhookVerificationError

__all__ = ["APIError", "RateLimited", "WebhookVerificationError", "raise_for"]


class APIError(Exception):
    """The API refused: ``status`` (HTTP), ``code`` (e.g. ``invalid_request``), ``message``,
    and ``body``, the whole error object (``fields`` of a 422, for one)."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class RateLimited(APIError):
    """A 429: try again in ``retry_after_ms`` milliseconds."""

    def __init__(
        self, status: int, code: str, message: str, body: dict[str, Any], retry_after_ms: int
    ) -> None:
        super().__init__(status, code, message, body)
        self.retry_after_ms = retry_after_ms


def _error_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return error
    return {"code": "http_error", "message": response.text[:500] or response.reason_phrase}


def _retry_after_ms(response: httpx.Response, error: dict[str, Any]) -> int:
    value = error.get("retry_after_ms")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    header = response.headers.get("Retry-After", "")
    return int(header) * 1000 if header.isdigit() else 0


def raise_for(response: httpx.Response) -> None:
    """Nothing for a 2xx; the typed error otherwise (the body must have been read)."""
    if response.is_success:
        return
    error = _error_object(response)
    code = str(error.get("code", "http_error"))
    message = str(error.get("message", ""))
    if response.status_code == 429:
        retry = _retry_after_ms(response, error)
        raise RateLimited(response.status_code, code, message, error, retry)
    raise APIError(response.status_code, code, message, error)
