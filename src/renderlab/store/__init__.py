"""Render and generation CRUD, next to the schema as the seed kept it.

Writes (``create_*``, ``update_render``) are internal: the pipeline calls them. Reads are
owner-scoped: given another user's id they find nothing, exactly as for an id that does not
exist.
"""

from renderlab.store.errors import InvalidUpdate, NotFound
from renderlab.store.generations import (
    create_generation,
    generation_props,
    get_generation,
    list_generations,
)
from renderlab.store.paging import Page
from renderlab.store.renders import (
    RENDER_COLUMNS,
    RenderSnapshot,
    create_render,
    find_render_internal,
    find_snapshot,
    get_render,
    get_render_by_generation,
    get_render_internal,
    insert_render,
    list_renders_by_user,
    update_render,
)
from renderlab.store.users import get_or_create_user, get_user_by_token

__all__ = [
    "RENDER_COLUMNS",
    "InvalidUpdate",
    "NotFound",
    "Page",
    "RenderSnapshot",
    "create_generation",
    "create_render",
    "find_render_internal",
    "find_snapshot",
    "generation_props",
    "get_generation",
    "get_or_create_user",
    "get_render",
    "get_render_by_generation",
    "get_render_internal",
    "get_user_by_token",
    "insert_render",
    "list_generations",
    "list_renders_by_user",
    "update_render",
]
