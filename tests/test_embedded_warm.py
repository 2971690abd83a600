"""The embedded pool's warm render processes: one process renders one render after another,
and a process killed for a cancel (or a timeout) is replaced, so the next render still runs.
Real processes, real encoder, real database and local storage."""

from __future__ import annotations

from renderlab.config import Settings
from renderlab.db import Database
from renderlab.pipeline import lifecycle
from renderlab.pipeline.recover import pid_alive
from renderlab.services import Services
from tests.factories import make_user
from tests.pipeline_helpers import (
    HEAVY_PROPS,
    HEAVY_SIZE,
    QUICK_PROPS,
    SMALL,
    embedded,
    read,
    wait_for,
)
from tests.test_embedded import holder_pid, make_services
from tests.test_embedded import start as start_props


def start(services: Services, user: str, text: str, props: dict, size: dict) -> str:
    return start_props(services, user, {**props, "text": text}, size)


def completed(db: Database, render_id: str) -> bool:
    return read(db, render_id).status == "complete"


def test_renders_one_after_another_run_in_the_same_process(
    settings: Settings, db: Database
) -> None:
    services = make_services(settings, db)
    user = make_user(db)
    with embedded(services, workers=1):
        first = start(services, user, "first", QUICK_PROPS, SMALL)
        wait_for(lambda: completed(db, first))
        second = start(services, user, "second", QUICK_PROPS, SMALL)
        wait_for(lambda: completed(db, second))
        pid = holder_pid(db, first)
        assert holder_pid(db, second) == pid
        assert pid_alive(pid), "the process waits, warm, for the next render"


def test_a_process_killed_by_a_cancel_is_replaced_for_the_next_render(
    settings: Settings, db: Database
) -> None:
    services = make_services(settings, db)
    user = make_user(db)
    with embedded(services, workers=1) as pool:
        heavy = start(services, user, HEAVY_PROPS["text"], HEAVY_PROPS, HEAVY_SIZE)
        wait_for(lambda: read(db, heavy).status == "rendering" and read(db, heavy).progress > 0)
        killed = holder_pid(db, heavy)
        lifecycle.cancel(services, user, heavy)
        wait_for(lambda: heavy not in pool.running(), timeout=5)
        after = start(services, user, "after the cancel", QUICK_PROPS, SMALL)
        wait_for(lambda: completed(db, after))
    assert holder_pid(db, after) != killed
    assert read(db, heavy).error_code == "cancelled"
