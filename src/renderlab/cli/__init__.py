"""The ``renderlab`` command: each module below registers its commands on the shared app."""

from renderlab.cli import db as _db  # noqa: F401
from renderlab.cli.app import app

__all__ = ["app"]
