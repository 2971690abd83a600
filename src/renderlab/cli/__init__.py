"""The ``renderlab`` command: each module below registers its commands on the shared app.

Nothing heavy is imported here or in the command modules at import time: each command's body
imports what it needs (the API, SQLAlchemy, Celery, the renderer), so ``renderlab --help`` costs
little more than Typer itself and ``renderlab render`` never loads the web stack.
"""

import logging
import os
import sys

# renderlab uses no pydantic plugin, and looking for them scans every installed distribution's
# entry points: 60 ms of every command here. PYDANTIC_DISABLE_PLUGINS="" looks for them again.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
# renderlab's numpy is elementwise, never BLAS; OpenBLAS's threads, started with numpy, take a
# core while numpy imports (user time 124 -> 62 ms) and spin beside x264's threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from renderlab.cli import db as _db  # noqa: F401
from renderlab.cli import render as _render  # noqa: F401
from renderlab.cli import serve as _serve  # noqa: F401
from renderlab.cli import token as _token  # noqa: F401
from renderlab.cli import webhook_secret as _webhook_secret  # noqa: F401
from renderlab.cli import worker as _worker  # noqa: F401
from renderlab.cli.app import app

__all__ = ["app", "main"]

# Commands that have written, closed and printed everything when they return. The interpreter's
# teardown after them (freeing numpy, PyAV and pydantic: 30 ms, a tenth of a short render's
# process) is skipped. Never the server or the worker, whose shutdown runs atexit handlers.
DONE_AT_RETURN = frozenset({"render", "still"})


def main() -> None:
    """The ``renderlab`` console script: the Typer app, then an exit without teardown for
    :data:`DONE_AT_RETURN` commands (tests call ``app`` itself, in their own process)."""
    try:
        app()
    except Exception as exc:
        from renderlab.env import invalid_environment

        lines = invalid_environment(exc)
        if lines is None:
            raise
        for line in lines:  # a variable that does not validate: say which, not a traceback
            sys.stderr.write(f"error: {line}\n")
        sys.exit(2)
    except SystemExit as exc:
        code = exc.code
        if len(sys.argv) > 1 and sys.argv[1] in DONE_AT_RETURN and isinstance(code, int | None):
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code or 0)
        raise
