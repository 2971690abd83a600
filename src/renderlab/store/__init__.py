"""Users, generations and renders in the database, next to the schema as the seed kept it.

Renders: :func:`find` / :func:`get` read one as a :class:`RenderSnapshot` (the one read model),
:func:`lock` takes the row for the pipeline to change with :func:`update`. Reads are
owner-scoped when given a ``user_id``: another user's render is not found, exactly as an id
that does not exist.
"""

from renderlab.store.errors import InvalidUpdate, NotFound
from renderlab.store.generations import (
    GenerationSnapshot,
    create_generation,
    generation_props,
    get_generation,
    get_with_newest_render,
    list_generations,
)
from renderlab.store.paging import Page
from renderlab.store.renders import (
    RENDER_COLUMNS,
    RenderSnapshot,
    find,
    get,
    insert,
    list_by_user,
    lock,
    newest_by_generation,
    newest_of_generation,
    update,
)
from renderlab.store.users import get_or_create_user, get_user_by_token

__all__ = [
    "RENDER_COLUMNS",
    "GenerationSnapshot",
    "InvalidUpdate",
    "NotFound",
    "Page",
    "RenderSnapshot",
    "create_generation",
    "find",
    "generation_props",
    "get",
    "get_generation",
    "get_or_create_user",
    "get_user_by_token",
    "get_with_newest_render",
    "insert",
    "list_by_user",
    "list_generations",
    "lock",
    "newest_by_generation",
    "newest_of_generation",
    "update",
]
