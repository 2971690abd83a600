"""Helpers for the operations tests (delete, retention, concurrency cap): renders started over
HTTP and completed through the real lifecycle with real files in storage (no encoding: these
tests are about rows and objects, not pixels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from renderlab.pipeline import chunked, lifecycle
from renderlab.services import Services
from renderlab.storage import keys
from tests.api_helpers import Api
from tests.factories import PROPS


def start(api: Api, **headers: str) -> dict[str, Any]:
    """A new generation of ``PROPS`` and a render of it at 320x180, started over HTTP."""
    generation = api.post("/v1/generations", json={"animation_props": PROPS}).json()
    body = {"generation_id": generation["id"], "width": 320, "height": 180}
    answer = api.post("/v1/renders", json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    return answer.json()


def finish(
    services: Services,
    tmp_path: Path,
    render_id: str,
    *,
    output_key: str | None = None,
    poster_key: str | None = None,
) -> tuple[str, str]:
    """Claim and complete the render through the lifecycle, with real files in storage (its
    own keys unless others are given: a render that reuses another's output, as the output
    cache makes them). Returns ``(output_key, poster_key)``."""
    owner = f"test-worker-{render_id}"
    lifecycle.claim(services, render_id, owner=owner, job_id="test")
    output_key = output_key or keys.output_key(render_id, "mp4")
    poster_key = poster_key or keys.poster_key(render_id)
    source = tmp_path / f"{render_id}.bin"
    source.write_bytes(b"not really a video, but really stored" * 10)
    size = services.storage.put_file(output_key, source, "video/mp4")
    services.storage.put_file(poster_key, source, "image/png")
    services.storage.put_file(chunked.segment_key(render_id, 0), source, "video/mp4")
    lifecycle.complete(
        services, render_id, owner, output_key=output_key, output_size=size, poster_key=poster_key
    )
    return output_key, poster_key


def local_path(url: str) -> str:
    """A signed local URL as the path the test client asks the app for."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def count(services: Services, model: type) -> int:
    """Rows of ``model`` in the database."""
    with services.db.session() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()
