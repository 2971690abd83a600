"""The HTTP API (FastAPI): routes of ``docs/api.md``, identity, errors and HTTP edges."""

from renderlab.api.app import create_app, freeze_startup_heap

__all__ = ["create_app", "freeze_startup_heap"]
