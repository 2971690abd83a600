"""``GET``/``HEAD /files/{key}``: the route behind local signed download URLs.

Mounted by the API only when storage is local (S3 URLs go straight to the store). It needs no
bearer token: the signature is the credential. Query parameters are read raw rather than
declared, so a missing or malformed one is the same 403 as a forged one instead of a 422 that
would tell a prober which part was wrong. It is left out of the OpenAPI document because it is
not part of the ``/v1`` contract; clients only ever follow the URLs they are given.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from renderlab.storage.local import LocalStorage
from renderlab.storage.serve import download_response


def files_router(get_storage: Callable[[], LocalStorage]) -> APIRouter:
    """A router serving ``/files/{key:path}`` from the storage ``get_storage`` returns."""
    router = APIRouter()

    # A plain ``def``: FastAPI runs it in the thread pool, so the stat() does not block the loop.
    @router.api_route("/files/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
    def download_file(key: str, request: Request) -> Response:
        query = request.query_params
        return download_response(
            get_storage(), key, query.get("expires"), query.get("filename"), query.get("sig")
        )

    return router
