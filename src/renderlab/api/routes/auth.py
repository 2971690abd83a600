"""``POST /v1/auth/token``: a ``dev``-mode token for a name, for the web page's sign-in box.

Only in ``RENDERLAB_AUTH=dev``, where ``renderlab token NAME`` would hand out the same token to
anyone at the keyboard. In ``hs256`` (the app's backend mints tokens) and ``jwks`` (an identity
provider does) the route does not exist: 404, and absent from the OpenAPI document. The token
is a credential: the answer says ``Cache-Control: no-store`` (as every JSON answer does).
"""

from fastapi import APIRouter, Response

from renderlab.api.auth import check_token_name
from renderlab.api.context import ApiContext
from renderlab.api.errors import invalid
from renderlab.api.routes import errors, json_response
from renderlab.api.schemas import TokenOut, TokenRequest
from renderlab.clock import ms_to_rfc3339


def router(ctx: ApiContext) -> APIRouter:
    limits = ctx.limits
    api = APIRouter(tags=["auth"])
    if ctx.auth.mode != "dev":
        return api

    @api.post(
        "/v1/auth/token",
        status_code=201,
        response_model=TokenOut,
        responses=errors(404, 413, 422),
        summary="A token for NAME (RENDERLAB_AUTH=dev only)",
    )
    async def issue_token(body: TokenRequest) -> Response:
        try:
            name = check_token_name(body.name, limits)
        except ValueError as exc:
            raise invalid("name", "body", str(exc)) from None
        token, expires = ctx.auth.issue(name)
        expires_at = ms_to_rfc3339(expires * 1000) or ""  # as every time in the API
        return json_response(TokenOut(token=token, expires_at=expires_at), 201)

    return api
