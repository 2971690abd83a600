"""Lease holders' names. The claim itself is :func:`renderlab.pipeline.lifecycle.claim`.

A worker (an embedded render process, a Celery task) takes a render by a compare-and-set,
``pending -> rendering``, on the locked row: of two workers handed the same render (a
redelivered message, a redispatch) exactly one wins. The winner holds a lease: its
``lease_owner`` and ``lease_expires_at = now + limits.lease_ms``, renewed by every progress
write and by a heartbeat. A worker that dies stops renewing; :mod:`renderlab.pipeline.recover`
finds the expired lease and runs the render again or fails it.

``lease_owner`` is ``host:pid:token``: the process that holds the render is visible in the
database (operators and tests can find, and signal, it) and a restarted ``serve`` can tell that
a lease's holder on this host is gone without waiting for it to expire.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

HOST = socket.gethostname()


def lease_owner(token: str, pid: int | None = None) -> str:
    """The lease holder's name: this host, the worker process id, a token unique to the run."""
    return f"{HOST}:{pid if pid is not None else os.getpid()}:{token}"


@dataclass(frozen=True)
class LeaseOwner:
    host: str
    pid: int
    token: str


def parse_owner(owner: str | None) -> LeaseOwner | None:
    """``host:pid:token`` back into its parts; None for anything else (another scheme)."""
    if not owner:
        return None
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return LeaseOwner(parts[0], int(parts[1]), parts[2])
