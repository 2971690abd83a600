"""Log lines for people (``text``, the default) or for a log pipeline (``json``).

``RENDERLAB_LOG_FORMAT=json`` makes every line of every renderlab process (``serve`` and its
uvicorn access and error logs, the embedded render processes, ``renderlab worker``) one JSON
object: ``ts`` (RFC 3339, UTC), ``level``, ``msg``, ``logger``, ``pid``, and ``request_id``,
``render_id``, ``user_id`` when the work at hand has them, plus ``exception`` for a traceback.

renderlab logs through the standard library (``logging.getLogger(__name__)``) everywhere;
structlog only formats the records and keeps the context. The context lives in contextvars
(:func:`bind`), so it follows a request through its awaits, and :func:`carry` takes it into
the threads the API hands work to.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Literal, TypeVar

import structlog
from structlog.contextvars import bind_contextvars, get_contextvars, reset_contextvars
from structlog.stdlib import ProcessorFormatter

Format = Literal["text", "json"]
CONTEXT_KEYS = ("request_id", "render_id", "user_id")
# Loggers that libraries give handlers of their own: in JSON mode they go through ours.
LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "kombu", "amqp")
T = TypeVar("T")

_configured: Format | None = None


def env_format() -> Format:
    return "json" if os.environ.get("RENDERLAB_LOG_FORMAT", "").lower() == "json" else "text"


def configure(fmt: Format | None = None, level: int = logging.INFO) -> Format:
    """Send this process's log records to stderr in ``fmt`` (default: the environment's).

    Idempotent. In ``json`` mode, library loggers lose their own handlers and propagate to
    ours, Python warnings and uncaught exceptions (main and other threads) are logged too:
    nothing this process writes by itself is left as a plain line.
    """
    global _configured
    fmt = fmt or env_format()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic narrates every start at INFO (its plugins, its dialect, each revision): with the
    # root at INFO that buried serve's banner. Its warnings and errors still come through.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    if fmt == "json":
        for name in LIBRARY_LOGGERS:
            library = logging.getLogger(name)
            library.handlers.clear()
            library.propagate = True
        logging.captureWarnings(True)
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_thread_uncaught
    _configured = fmt
    return fmt


_SIGNATURE = re.compile(r"(?i)\b(sig|x-amz-signature)=[^&\s\"']+")


class RedactSignatures(logging.Filter):
    """Takes the signature out of the URLs an access log line holds (``sig=`` of a signed
    download link, ``X-Amz-Signature=`` of a presigned one): a link stays valid for its whole
    TTL, so a line with it would let anyone who reads the log download the file."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) for a in record.args):
            record.args = tuple(
                _SIGNATURE.sub(r"\1=redacted", a) if isinstance(a, str) else a for a in record.args
            )
        elif isinstance(record.msg, str) and "=" in record.msg:
            record.msg = _SIGNATURE.sub(r"\1=redacted", record.msg)
        return True


def redact_access_log() -> None:
    """Install :class:`RedactSignatures` on uvicorn's access logger (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSignatures) for f in access.filters):
        access.addFilter(RedactSignatures())


def is_json() -> bool:
    return (_configured or env_format()) == "json"


@contextlib.contextmanager
def bind(**values: str | None) -> Iterator[None]:
    """``request_id``, ``render_id``, ``user_id`` (or more) on every line logged inside."""
    tokens = bind_contextvars(**{k: v for k, v in values.items() if v is not None})
    try:
        yield
    finally:
        reset_contextvars(**tokens)


def set_context(**values: str | None) -> None:
    """Like :func:`bind`, for the rest of the current task (a request's task, a render's
    process): nothing to undo, the context ends with it."""
    bind_contextvars(**{k: v for k, v in values.items() if v is not None})


def current(key: str) -> str | None:
    value = get_contextvars().get(key)
    return value if isinstance(value, str) else None


def carry(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` run in a copy of the caller's context: for work handed to an executor
    (``loop.run_in_executor`` does not carry contextvars by itself)."""
    context = contextvars.copy_context()
    return functools.partial(context.run, fn)


# -- formatting ----------------------------------------------------------------------------


def _formatter(fmt: Format) -> logging.Formatter:
    pre_chain: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _add_pid,
    ]
    if fmt == "json":
        render: list[Any] = [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("msg"),
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ]
    else:
        # Plain tracebacks: rich's pretty ones print every frame's locals (secrets, tokens)
        # and take long enough to format to matter in a render process on its deadline.
        console = structlog.dev.ConsoleRenderer(
            colors=False,
            pad_event_to=0,
            timestamp_key="ts",
            exception_formatter=structlog.dev.plain_traceback,
        )
        render = [console]
    return ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[ProcessorFormatter.remove_processors_meta, *render],
    )


def _add_pid(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    event["pid"] = os.getpid()
    return event


def _log_uncaught(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    logging.getLogger("renderlab").critical("uncaught exception", exc_info=(kind, value, tb))


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    logging.getLogger("renderlab").critical("uncaught exception in thread %s", name,
                                            exc_info=exc_info)  # fmt: skip


class _LogConsole:
    """What a command prints to stderr for people, as log records in JSON mode."""

    def print(self, *objects: object, **_: object) -> None:
        from rich.text import Text

        message = " ".join(Text.from_markup(str(o)).plain for o in objects)
        level = logging.ERROR if message.startswith("error:") else logging.INFO
        if message.startswith("warning:"):
            level = logging.WARNING
        logging.getLogger("renderlab.cli").log(level, message)


def stderr_console() -> Any:
    """A rich console on stderr for ``text``; a logger that takes ``print`` for ``json``."""
    if is_json():
        return _LogConsole()
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)  # a log line is one line
