"""The web page ``renderlab serve`` shows at ``/``: plain HTML, CSS and JS modules, no build step.

``router`` serves ``/`` (``static/index.html``) and ``/static/{name}`` (the other files of
``static/``, read once into memory with a content hash as ETag). Only names found in that folder
are served, so no request can reach any other file.

Every response carries a strict Content-Security-Policy: scripts, styles and requests only from
this origin, images also from ``blob:``/``data:`` (the preview), posters and media from any
http(s) URL (a render's signed URLs may point at an S3-compatible store). The app's security
middleware appends ``frame-ancestors 'none'``. The page reads the identity mode from a
``<meta>`` tag filled here, so it needs no probing request to decide between a name field and a
token field.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import Response

__all__ = ["router"]

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data: http: https:",
        "media-src 'self' blob: http: https:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    )
)
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}
# No build step means no hashed file names: browsers keep the files but ask again every time
# (a 304 when unchanged), so a new version is picked up on the next load.
STATIC_CACHE = "no-cache"
PAGE_CACHE = "no-cache"
AUTH_MODE_PLACEHOLDER = "{{auth_mode}}"


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def _load() -> dict[str, StaticFile]:
    files: dict[str, StaticFile] = {}
    folder = resources.files(__name__).joinpath("static")
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if not entry.is_file() or suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        files[entry.name] = StaticFile(body, CONTENT_TYPES[suffix], etag)
    return files


_FILES = _load()
router = APIRouter(include_in_schema=False)


def _headers(file: StaticFile, cache: str) -> dict[str, str]:
    return {
        "ETag": file.etag,
        "Cache-Control": cache,
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    }


def _send(request: Request, file: StaticFile, cache: str) -> Response:
    headers = _headers(file, cache)
    if file.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(file.body, media_type=file.content_type, headers=headers)


def _auth_mode(request: Request) -> str:
    """``local`` (zero-setup: the page asks for a name) or ``provider`` (it asks for a token);
    ``unknown`` when the app has no such context (the page then asks the API)."""
    ctx = getattr(request.app.state, "ctx", None)
    auth = getattr(ctx, "auth", None)
    is_local = getattr(auth, "is_local", None)
    if is_local is None:
        return "unknown"
    return "local" if is_local else "provider"


@router.api_route("/", methods=["GET", "HEAD"], response_class=Response)
async def index(request: Request) -> Response:
    page = _FILES["index.html"]
    mode = html.escape(_auth_mode(request)).encode()
    body = page.body.replace(AUTH_MODE_PLACEHOLDER.encode(), mode)
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    return _send(request, StaticFile(body, page.content_type, etag), PAGE_CACHE)


@router.api_route("/static/{name}", methods=["GET", "HEAD"], response_class=Response)
async def static_file(name: str, request: Request) -> Response:
    file = _FILES.get(name)
    if file is None or name == "index.html":
        return Response(
            b'{"error": {"code": "not_found", "message": "Not Found."}}',
            status_code=404,
            media_type="application/json",
        )
    return _send(request, file, STATIC_CACHE)


@router.get("/favicon.ico", response_class=Response)
async def favicon(request: Request) -> Response:
    """Browsers ask for it whatever the page links: answer with the page's icon."""
    return _send(request, _FILES["favicon.svg"], STATIC_CACHE)
