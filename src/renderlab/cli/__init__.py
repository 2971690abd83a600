"""The ``renderlab`` command: each module below registers its commands on the shared app."""

from renderlab.cli import db as _db  # noqa: F401
from renderlab.cli import render as _render  # noqa: F401
from renderlab.cli import serve as _serve  # noqa: F401
from renderlab.cli import token as _token  # noqa: F401
from renderlab.cli import webhook_secret as _webhook_secret  # noqa: F401
from renderlab.cli import worker as _worker  # noqa: F401
from renderlab.cli.app import app

__all__ = ["app"]
