"""``GET``/``HEAD /files/{key}``: the route behind the local backend's signed download URLs.

A link is served with the Content-Type and disposition (``inline`` or ``attachment``) it was
signed with (``type`` and ``disposition`` in its query; see :mod:`renderlab.storage.signing`),
so an output is a ``video/webm`` download, a poster an ``image/png``, and neither can be
changed without breaking the signature.

Mounted by the API only when storage is local (S3 URLs go straight to the store). It needs no
bearer token: the signature is the credential. Query parameters are read raw rather than
declared, so a missing or malformed one is the same 403 as a forged one instead of a 422 that
would tell a prober which part was wrong. It is left out of the OpenAPI document because it is
not part of the ``/v1`` contract; clients only ever follow the URLs they are given.

Order matters: the parameters and the key's shape are checked before anything touches the
disk, the signature before the expiry (so only links we really issued are reported expired),
then the file. Ranges (single and multiple 206, 416) are Starlette's ``FileResponse``, which
has parsed ``Range`` and ``If-Range`` itself since 0.39 (FastAPI 0.115 needs a later one);
its refusals (400, 416) are answered in the error shape by ``RangedFileResponse``. The route
tests check 206, 400 and 416 over real HTTP so a regression would show.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import Headers
from starlette.responses import (
    FileResponse,
    JSONResponse,
    MalformedRangeHeader,
    RangeNotSatisfiable,
    Response,
)
from starlette.types import Receive, Scope, Send

from renderlab.storage import signing
from renderlab.storage.base import InvalidKey, validate_key
from renderlab.storage.disposition import DISPOSITIONS, content_disposition, safe_filename
from renderlab.storage.local import LocalStorage, check_served_as

LEGACY_CONTENT_TYPE = "video/mp4"
"""What a link signed without a type (before codecs) is served as: they were all H.264 MP4s."""

_NO_STORE = {"Cache-Control": "no-store"}


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers={**_NO_STORE, **(headers or {})})


class RangedFileResponse(FileResponse):
    """Starlette's ``FileResponse`` whose refusals of a ``Range`` are in the contract's error
    shape: Starlette answers a malformed one with a plain-text 400 and an unsatisfiable one
    with an empty 416. The range is parsed here by Starlette's own parser, under the same
    conditions, so what is served is unchanged."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._range_refusal(scope)
        if refusal is None:
            await super().__call__(scope, receive, send)
        else:
            await refusal(scope, receive, send)

    def _range_refusal(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        http_range, if_range = headers.get("range"), headers.get("if-range")
        if http_range is None or self.stat_result is None or self.status_code != 200:
            return None
        if if_range is not None and not self._should_use_range(if_range):
            return None
        size = self.stat_result.st_size
        try:
            self._parse_range_header(http_range, size)
        except MalformedRangeHeader:
            return _error(400, "bad_request", "The Range header is malformed.")
        except RangeNotSatisfiable:
            message = f"The Range asks for bytes past the end of the file ({size} bytes)."
            return _error(
                416, "range_not_satisfiable", message, {"Content-Range": f"bytes */{size}"}
            )
        return None


def forbidden() -> JSONResponse:
    return _error(
        403,
        "forbidden",
        "This download link is not valid. Copy the whole link, or ask for a new download link.",
    )


@dataclass(frozen=True)
class LinkQuery:
    """The parameters of a signed link, raw from its query string (any may be missing)."""

    expires: str | None
    filename: str | None
    sig: str | None
    disposition: str | None = None
    content_type: str | None = None

    @classmethod
    def of(cls, request: Request) -> LinkQuery:
        query = request.query_params
        return cls(
            query.get("expires"),
            query.get("filename"),
            query.get("sig"),
            query.get("disposition"),
            query.get("type"),
        )


def download_response(
    storage: LocalStorage, key: str, link: LinkQuery, now: float | None = None
) -> Response:
    """403 for a bad or expired link, 404 if the file is gone, else the file (206 on Range)
    with the disposition and Content-Type the link was signed with."""
    now = time.time() if now is None else now
    expires_at = signing.parse_expires(link.expires)
    disposition = link.disposition or signing.DEFAULT_DISPOSITION
    if expires_at is None or not link.filename or not link.sig or disposition not in DISPOSITIONS:
        return forbidden()
    try:
        validate_key(key)
        check_served_as(disposition, link.content_type)
    except (InvalidKey, ValueError):
        return forbidden()
    signed = (key, expires_at, link.filename, link.sig, disposition, link.content_type)
    if not storage.verify(*signed):
        return forbidden()
    if signing.is_expired(expires_at, now):
        return _error(
            403,
            "url_expired",
            "This download link expired. Ask for a new download link from the render.",
        )
    path, stat_result = _stat(storage, key)
    if path is None or stat_result is None:
        return _error(404, "not_found", "The file for this link no longer exists. Render it again.")
    return RangedFileResponse(
        path,
        media_type=link.content_type or LEGACY_CONTENT_TYPE,
        stat_result=stat_result,
        headers={
            "Content-Disposition": content_disposition(safe_filename(link.filename), disposition),
            "Cache-Control": f"private, max-age={max(0, expires_at - int(now))}",
            "Accept-Ranges": "bytes",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _stat(storage: LocalStorage, key: str) -> tuple[Path | None, os.stat_result | None]:
    """The object's file and its stat, or Nones unless it is a regular file."""
    try:
        path = storage.path_for(key)
        stat_result = os.stat(path)
    except (InvalidKey, OSError):
        return None, None
    if not stat.S_ISREG(stat_result.st_mode):
        return None, None
    return path, stat_result


def files_router(
    get_storage: Callable[[], LocalStorage], clock: Callable[[], int] | None = None
) -> APIRouter:
    """A router serving ``/files/{key:path}`` from the storage ``get_storage`` returns; links
    expire by ``clock`` (epoch ms: the services' clock that signed them; default wall time)."""
    router = APIRouter()

    # A plain ``def``: FastAPI runs it in the thread pool, so the stat() does not block the loop.
    @router.api_route("/files/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
    def download_file(key: str, request: Request) -> Response:
        now = None if clock is None else clock() / 1000
        return download_response(get_storage(), key, LinkQuery.of(request), now)

    return router
