"""Small builders for test data, written through the real store."""

from __future__ import annotations

from typing import Any

from renderlab import store
from renderlab.clock import now_ms
from renderlab.db import Database

PROPS: dict[str, Any] = {
    "text": "Hello, renderlab",
    "style": "fade-in",
    "color": "#FFFFFF",
    "background_color": "#101820",
    "duration_in_frames": 60,
}


def make_user(db: Database, name: str = "alice") -> str:
    with db.transaction() as session:
        return store.get_or_create_user(session, f"https://issuer.test|{name}", name=name).id


def make_generation(db: Database, user_id: str, **overrides: Any) -> str:
    with db.transaction() as session:
        return store.create_generation(session, user_id, {**PROPS, **overrides}).id


def make_render(db: Database, user_id: str, generation_id: str) -> str:
    with db.write() as connection:
        render = store.insert(
            connection,
            now=now_ms(),
            user_id=user_id,
            generation_id=generation_id,
            width=1920,
            height=1080,
            fps=30,
            duration_in_frames=60,
        )
        return render.id
