"""``POST /v1/auth/token``: a zero-setup token for a name, for the web page's sign-in box.

Only in zero-setup mode, where ``renderlab token NAME`` would hand out the same token to anyone
at the keyboard; with an identity provider configured the route answers 404 as if absent.
"""

from datetime import UTC, datetime

from fastapi import APIRouter, Response

from renderlab.api.auth import check_token_name
from renderlab.api.context import ApiContext
from renderlab.api.errors import ApiError, invalid
from renderlab.api.routes import errors, json_response
from renderlab.api.schemas import TokenOut, TokenRequest


def router(ctx: ApiContext) -> APIRouter:
    limits = ctx.limits
    api = APIRouter(tags=["auth"])

    @api.post(
        "/v1/auth/token",
        status_code=201,
        response_model=TokenOut,
        responses=errors(404, 413, 422),
        summary="A zero-setup token for NAME (zero-setup identity mode only)",
    )
    async def issue_token(body: TokenRequest) -> Response:
        if not ctx.auth.is_local:
            raise ApiError(404, "not_found", "Not Found")
        try:
            name = check_token_name(body.name, limits)
        except ValueError as exc:
            raise invalid("name", "body", str(exc)) from None
        token, expires = ctx.auth.issue(name)
        expires_at = datetime.fromtimestamp(expires, tz=UTC).isoformat().replace("+00:00", "Z")
        return json_response(TokenOut(token=token, expires_at=expires_at), 201)

    return api
