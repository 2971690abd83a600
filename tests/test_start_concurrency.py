"""No race lets a sixth render in: 50 threads, each on its own connection, start at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from renderlab.config import Settings
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.models import Render
from renderlab.pipeline.start import QuotaExceeded, RenderRequest, start_render
from renderlab.services import Services
from tests.factories import make_generation, make_user

THREADS = 50


def test_fifty_simultaneous_starts_leave_exactly_five(
    database_url: str, settings: Settings
) -> None:
    setup = Database(database_url)
    user = make_user(setup)
    generation = make_generation(setup, user)
    setup.dispose()

    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        db = Database(database_url, null_pool=True)  # its own connection
        services = Services(settings=settings, limits=Limits(), db=db)
        barrier.wait()
        try:
            start_render(services, user, RenderRequest(generation_id=generation))
            outcome = "created"
        except QuotaExceeded:
            outcome = "refused"
        except Exception as exc:  # any other failure is a bug worth seeing
            outcome = f"error: {exc!r}"
        finally:
            db.dispose()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(set(outcomes)) == ["created", "refused"], outcomes
    assert outcomes.count("created") == 5
    check = Database(database_url)
    with check.session() as session:
        assert session.execute(select(func.count()).select_from(Render)).scalar() == 5
    check.dispose()


@pytest.mark.parametrize("window_ms", [3_600_000, 60_000])
def test_quota_message_names_the_configured_numbers(window_ms: int, services: Services) -> None:
    from renderlab.pipeline.start import quota_message

    services.limits = Limits(renders_per_hour=7, rate_window_ms=window_ms)
    message = quota_message(services)
    assert "up to 7 videos" in message
    assert ("per hour" in message) == (window_ms == 3_600_000)
