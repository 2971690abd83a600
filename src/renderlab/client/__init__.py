"""The Python client of the renderlab API (``Client``, ``AsyncClient``), over httpx.

    from renderlab.client import Client

    with Client("http://127.0.0.1:8000", token) as rl:
        render = rl.render({"text": "Hi", "style": "fade-in", "color": "#FFFFFF"})
        done = rl.wait(render["id"], on_progress=lambda r: print(r["progress"]))
        rl.download(done, "hi.mp4")

A face: it speaks HTTP only and imports nothing of the server but the webhook verifier.
"""

from renderlab.client.asynchronous import AsyncClient
from renderlab.client.errors import APIError, RateLimited, WebhookVerificationError
from renderlab.client.sync import Client
from renderlab.client.webhooks import verify_webhook

__all__ = [
    "APIError",
    "AsyncClient",
    "Client",
    "RateLimited",
    "WebhookVerificationError",
    "verify_webhook",
]
