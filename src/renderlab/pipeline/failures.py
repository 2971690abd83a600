"""Why a render stopped, in a sentence its owner can act on, and whether that costs a slot.

Users read ``render.error``; operators read the log. So every failure is turned into one of a
few fixed sentences here (the exception itself, with its stack trace, goes to the log), and
into a refund decision: a render that failed through renderlab's fault (storage down, a worker
lost twice, a bug) gives its quota slot back, and so does one that ran out of time: a render is
accepted only when its estimated cost fits well inside the timeout (``render.cost``), so one
that still runs out was renderlab's misjudgement or a machine too busy, not its owner's doing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from renderlab.caps import CapError
from renderlab.limits import Limits
from renderlab.storage import StorageError

CANCELLED = "Render cancelled."
STORAGE_FAILED = "Could not store the video. Please try again."
WORKER_LOST = "The render worker stopped unexpectedly. Please try again."
INTERNAL = "Something went wrong while rendering the video. Please try again."


def timed_out_message(limits: Limits) -> str:
    """``Render timed out after 60 seconds.`` with the configured number."""
    seconds = limits.render_timeout_ms / 1000
    return f"Render timed out after {seconds:g} second{'' if seconds == 1 else 's'}."


class LostClaim(Exception):
    """The render is no longer this worker's: cancelled, timed out, finished, or handed to
    another worker after this one was presumed dead. The worker stops and writes nothing."""

    def __init__(self, render_id: str, status: str) -> None:
        super().__init__(f"render {render_id} is {status} and no longer held by this worker")
        self.render_id = render_id
        self.status = status


class RenderTimedOut(Exception):
    """The render ran past ``limits.render_timeout_ms``."""


@dataclass(frozen=True)
class Failure:
    """What a failed render records: the user's sentence, the machine-readable ``error_code``
    (``docs/api.md``) and whether the slot comes back."""

    message: str
    refund: bool
    code: str = "render_failed"


def cancelled() -> Failure:
    return Failure(CANCELLED, refund=True, code="cancelled")


def worker_lost() -> Failure:
    return Failure(WORKER_LOST, refund=True, code="worker_lost")


def timed_out(limits: Limits) -> Failure:
    return Failure(timed_out_message(limits), refund=True, code="timed_out")


def classify(exc: BaseException, limits: Limits) -> Failure:
    """The user-facing outcome of ``exc`` raised while running a render."""
    if isinstance(exc, RenderTimedOut):
        return timed_out(limits)
    if isinstance(exc, StorageError):
        return Failure(STORAGE_FAILED, refund=True, code="storage_failed")
    if isinstance(exc, CapError):  # the props' own fault, found late: the slot comes back
        return Failure(exc.message, refund=True, code="invalid_props")
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        detail = errors[0]["msg"].removeprefix("Value error, ") if errors else "invalid value"
        where = ".".join(str(part) for part in errors[0]["loc"]) if errors else ""
        field = f" ({where})" if where else ""
        message = f"The animation's settings are not valid{field}: {detail}."
        return Failure(message, refund=True, code="invalid_props")
    return Failure(INTERNAL, refund=True, code="render_failed")
