"""Retention over HTTP (SQLite and PostgreSQL): a complete render expires
``RENDERLAB_OUTPUT_TTL_S`` after it completed; the reconciler then removes its output and
poster (unless another render still references them) and marks it ``output_expired``; its
URLs are null and ``download-url`` is a 410 ``output_expired``. A TTL of 0 keeps outputs."""

from __future__ import annotations

from pathlib import Path

from renderlab.limits import Limits
from renderlab.pipeline.recover import reconcile
from renderlab.services import Services
from tests.api_helpers import Api, attach_local_storage, make_api
from tests.conftest import FakeClock
from tests.ops_helpers import finish, start
from tests.pipeline_helpers import read

DAY_MS = 24 * 3600 * 1000


def nothing_to_dispatch(render_id: str) -> None:
    raise AssertionError(f"nothing was stuck, yet {render_id} was dispatched")


def test_output_expires_after_its_ttl(services: Services, clock: FakeClock, tmp_path: Path) -> None:
    attach_local_storage(services)
    alice = Api(make_api(services), "alice")
    render = start(alice)
    files = finish(services, tmp_path, render["id"])
    read = alice.get(f"/v1/renders/{render['id']}").json()
    completed_ms = clock.now
    assert read["expires_at"] is not None
    assert Limits().output_ttl_s == 30 * 24 * 3600  # the default: 30 days

    clock.advance(30 * DAY_MS - 1)  # not yet
    assert reconcile(services, nothing_to_dispatch).expired == []
    assert all(services.storage.exists(key) for key in files)

    clock.advance(2)
    assert reconcile(services, nothing_to_dispatch).expired == [render["id"]]
    assert not any(services.storage.exists(key) for key in files)
    expired = alice.get(f"/v1/renders/{render['id']}").json()
    assert expired["output_expired"] is True
    assert expired["output_url"] is None and expired["poster_url"] is None
    assert expired["status"] == "complete"
    answer = alice.post(f"/v1/renders/{render['id']}/download-url")
    assert answer.status_code == 410
    assert answer.json()["error"]["code"] == "output_expired"
    assert reconcile(services, nothing_to_dispatch).expired == []  # once only
    assert completed_ms + 30 * DAY_MS <= clock.now


def test_expires_at_is_completed_at_plus_the_ttl(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    attach_local_storage(services)
    services.limits = Limits(output_ttl_s=60)
    api = Api(make_api(services), "alice")
    render = start(api)
    finish(services, tmp_path, render["id"])
    stored = read(services.db, render["id"])
    assert stored.completed_at == clock.now
    assert stored.expires_at == clock.now + 60_000


def test_ttl_zero_keeps_outputs_forever(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    attach_local_storage(services)
    services.limits = Limits(output_ttl_s=0)
    alice = Api(make_api(services), "alice")
    render = start(alice)
    files = finish(services, tmp_path, render["id"])
    assert alice.get(f"/v1/renders/{render['id']}").json()["expires_at"] is None
    clock.advance(3650 * DAY_MS)
    assert reconcile(services, nothing_to_dispatch).expired == []
    assert all(services.storage.exists(key) for key in files)
    assert alice.post(f"/v1/renders/{render['id']}/download-url").status_code == 200


def test_a_shared_output_outlives_the_first_expiry(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    attach_local_storage(services)
    services.limits = Limits(output_ttl_s=60)
    alice = Api(make_api(services), "alice")
    first, second = start(alice), start(alice)
    shared = finish(services, tmp_path, first["id"])
    clock.advance(30_000)
    finish(services, tmp_path, second["id"], output_key=shared[0], poster_key=shared[1])

    clock.advance(30_001)  # the first is due, the second not yet
    assert reconcile(services, nothing_to_dispatch).expired == [first["id"]]
    assert all(services.storage.exists(key) for key in shared)
    assert alice.post(f"/v1/renders/{first['id']}/download-url").status_code == 410
    assert alice.post(f"/v1/renders/{second['id']}/download-url").status_code == 200

    clock.advance(30_000)
    assert reconcile(services, nothing_to_dispatch).expired == [second["id"]]
    assert not any(services.storage.exists(key) for key in shared)


def test_an_output_gone_from_storage_is_410(services: Services, tmp_path: Path) -> None:
    """What an S3 bucket lifecycle rule does: the object goes, the database is not told."""
    attach_local_storage(services)
    alice = Api(make_api(services), "alice")
    render = start(alice)
    output, _poster = finish(services, tmp_path, render["id"])
    services.storage.delete(output)
    answer = alice.post(f"/v1/renders/{render['id']}/download-url")
    assert answer.status_code == 410
    assert answer.json()["error"]["code"] == "output_expired"
