"""Deleting renders and generations over HTTP (SQLite and PostgreSQL, local storage): 204 for
the owner, 404 for anyone else; a running render is cancelled first; its output, poster and
segments leave storage and its old signed URLs answer 404; an object another render still
references stays until the last one goes."""

from __future__ import annotations

from pathlib import Path

from renderlab.models import IdempotencyKey, Render
from renderlab.pipeline import chunked
from renderlab.services import Services
from tests.api_helpers import Api, attach_local_storage, make_api
from tests.factories import PROPS
from tests.ops_helpers import count, finish, local_path, start


def test_delete_render_removes_row_files_and_old_urls(services: Services, tmp_path: Path) -> None:
    attach_local_storage(services)
    alice = Api(make_api(services), "alice")
    bob = Api(alice.app, "bob", alice.client)
    render = start(alice, **{"Idempotency-Key": "once"})
    output, poster = finish(services, tmp_path, render["id"])
    read = alice.get(f"/v1/renders/{render['id']}").json()
    old_urls = [local_path(read["output_url"]), local_path(read["poster_url"])]
    assert all(alice.client.get(url).status_code == 200 for url in old_urls)
    assert count(services, IdempotencyKey) == 1

    assert bob.client.delete(f"/v1/renders/{render['id']}", headers=bob.headers).status_code == 404
    assert alice.get(f"/v1/renders/{render['id']}").status_code == 200  # untouched

    deleted = alice.client.delete(f"/v1/renders/{render['id']}", headers=alice.headers)
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert alice.get(f"/v1/renders/{render['id']}").status_code == 404
    for url in old_urls:
        gone = alice.client.get(url)
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "not_found"
    storage = services.storage
    assert not storage.exists(output) and not storage.exists(poster)
    assert not storage.exists(chunked.segment_key(render["id"], 0))
    assert count(services, IdempotencyKey) == 0  # the key cascades with its render
    again = alice.client.delete(f"/v1/renders/{render['id']}", headers=alice.headers)
    assert again.status_code == 404


def test_delete_of_a_pending_render_cancels_it_first(services: Services) -> None:
    attach_local_storage(services)
    alice = Api(make_api(services), "alice")
    before = alice.get("/v1/quota").json()["remaining"]
    render = start(alice)
    assert alice.get("/v1/quota").json()["remaining"] == before - 1
    deleted = alice.client.delete(f"/v1/renders/{render['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    assert alice.get("/v1/quota").json()["remaining"] == before  # cancelled: slot refunded
    assert count(services, Render) == 0


def test_delete_generation_removes_every_render_and_file(
    services: Services, tmp_path: Path
) -> None:
    attach_local_storage(services)
    alice = Api(make_api(services), "alice")
    generation = alice.post("/v1/generations", json={"animation_props": PROPS}).json()
    body = {"generation_id": generation["id"], "width": 320, "height": 180}
    done = alice.post("/v1/renders", json=body).json()
    running = alice.post("/v1/renders", json=body).json()
    files = finish(services, tmp_path, done["id"])
    bob = Api(alice.app, "bob", alice.client)
    path = f"/v1/generations/{generation['id']}"
    assert bob.client.delete(path, headers=bob.headers).status_code == 404

    assert alice.client.delete(path, headers=alice.headers).status_code == 204
    assert alice.get(path).status_code == 404
    assert alice.get(f"/v1/renders/{done['id']}").status_code == 404
    assert alice.get(f"/v1/renders/{running['id']}").status_code == 404
    assert not any(services.storage.exists(key) for key in files)
    assert count(services, Render) == 0


def test_a_shared_output_goes_with_its_last_render_only(services: Services, tmp_path: Path) -> None:
    attach_local_storage(services)
    alice = Api(make_api(services), "alice")
    first, second = start(alice), start(alice)
    shared = finish(services, tmp_path, first["id"])
    finish(services, tmp_path, second["id"], output_key=shared[0], poster_key=shared[1])

    assert (
        alice.client.delete(f"/v1/renders/{first['id']}", headers=alice.headers).status_code == 204
    )
    assert all(services.storage.exists(key) for key in shared)  # the second still needs them
    url = alice.post(f"/v1/renders/{second['id']}/download-url").json()["url"]
    assert alice.client.get(local_path(url)).status_code == 200

    assert (
        alice.client.delete(f"/v1/renders/{second['id']}", headers=alice.headers).status_code == 204
    )
    assert not any(services.storage.exists(key) for key in shared)
