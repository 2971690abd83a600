"""``/docs`` without the internet: Swagger UI's files served by renderlab itself, and the
webhooks renderlab sends described in the OpenAPI document.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN, a blank page offline. The files come
from the ``fastapi-offline`` package (Swagger UI 5, which reads OpenAPI 3.1); nothing is
vendored here.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from renderlab.api.context import BEARER
from renderlab.api.schemas import RenderOut

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
ASSETS = files("fastapi_offline") / "static"

WEBHOOK_DESCRIPTION = """Sent when a render that was started with a `webhook_url` ends, as a
POST with the Standard Webhooks headers `webhook-id` (the same on every retry: use it to drop
duplicates), `webhook-timestamp` (Unix seconds) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with `RENDERLAB_WEBHOOK_SECRET`;
`renderlab webhook-secret` prints it). Answer 2xx within 10 s; anything else is retried on
`RENDERLAB_WEBHOOK_RETRY_SCHEDULE_S` (default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h).

Verify before trusting the body (Python):

```python
from renderlab.client import verify_webhook, WebhookVerificationError

event = verify_webhook(request_body_bytes, request_headers, "whsec_...")
if event["type"] == "render.completed":
    url = event["data"]["output_url"]
```

Any Standard Webhooks library verifies it too (npm `standardwebhooks`:
`new Webhook(secret).verify(body, headers)`). See `docs/integration.md`."""


class WebhookEvent(BaseModel):
    """The body of a webhook."""

    type: Literal["render.completed", "render.failed"]
    timestamp: str = Field(description="RFC 3339, when the event was made.")
    data: RenderOut = Field(description="The render object as the API returns it.")


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets from this process; the app is built with
    ``docs_url=None`` so FastAPI's CDN page is not registered."""
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS)), name="docs-assets")
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            oauth2_redirect_url=redirect_url,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        )

    @app.get(redirect_url, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    _describe_webhooks(app)
    _declare_bearer_scheme(app)


def _declare_bearer_scheme(app: FastAPI) -> None:
    """The bearer scheme in ``components.securitySchemes``: routes name it in their
    ``security`` (``routes.route``) without depending on ``HTTPBearer``, so FastAPI would not
    list it itself."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
            model = BEARER.model.model_dump(mode="json", by_alias=True, exclude_none=True)
            schemes[BEARER.scheme_name] = model
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _describe_webhooks(app: FastAPI) -> None:
    @app.webhooks.post(
        "render-ended",
        summary="A render ended (render.completed or render.failed)",
        description=WEBHOOK_DESCRIPTION,
    )
    def render_ended(body: WebhookEvent) -> None:
        """(Documentation only: renderlab sends this request, it does not serve it.)"""
