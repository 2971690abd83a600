"""Render and generation CRUD: owner scoping, paging, the state machine, DB constraints."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from renderlab import store
from renderlab.clock import now_ms
from renderlab.db import Database
from renderlab.ids import is_id
from renderlab.store.paging import InvalidCursor
from tests.factories import make_generation, make_render, make_user


def test_ids_are_opaque_ulids(db: Database) -> None:
    user = make_user(db)
    generation = make_generation(db, user)
    render = make_render(db, user, generation)
    for value in (user, generation, render):
        assert is_id(value) and not value.isdigit()
    assert len({user, generation, render}) == 3


def test_user_upsert_is_idempotent(db: Database) -> None:
    assert make_user(db, "alice") == make_user(db, "alice")
    assert make_user(db, "alice") != make_user(db, "bob")


def test_reads_are_owner_scoped(db: Database) -> None:
    alice, bob = make_user(db, "alice"), make_user(db, "bob")
    generation = make_generation(db, alice)
    render = make_render(db, alice, generation)
    with db.session() as session:
        assert store.get(session, render, user_id=alice).id == render
        assert store.get_generation(session, alice, generation).id == generation
        with pytest.raises(store.NotFound):
            store.get(session, render, user_id=bob)
        with pytest.raises(store.NotFound):
            store.get_generation(session, bob, generation)
        with pytest.raises(store.NotFound):
            store.get(session, "01ARZ3NDEKTSV4RRFFQ69G5FAV", user_id=alice)
        with pytest.raises(store.NotFound):
            store.get(session, "../../etc/passwd", user_id=alice)
        assert store.newest_of_generation(session, bob, generation) is None
        assert store.list_by_user(session, bob).items == []
        assert store.list_generations(session, bob).items == []


def test_get_by_generation_returns_the_newest(db: Database) -> None:
    user = make_user(db)
    generation = make_generation(db, user)
    make_render(db, user, generation)
    newest = make_render(db, user, generation)
    with db.session() as session:
        assert store.newest_of_generation(session, user, generation).id == newest


def test_list_by_user_pages_newest_first(db: Database) -> None:
    user = make_user(db)
    generation = make_generation(db, user)
    made = [make_render(db, user, generation) for _ in range(25)]
    seen: list[str] = []
    cursor = None
    with db.session() as session:
        first = store.list_by_user(session, user)
        assert len(first.items) == 20 and first.next_cursor
        while True:
            page = store.list_by_user(session, user, limit=7, cursor=cursor)
            seen += [r.id for r in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert seen == sorted(made, reverse=True)  # ULIDs of one process sort by creation
    assert len(seen) == 25
    with db.session() as session, pytest.raises(InvalidCursor):
        store.list_by_user(session, user, cursor="garbage!")


def test_update_follows_the_state_machine(db: Database) -> None:
    user = make_user(db)
    render = make_render(db, user, make_generation(db, user))
    with db.transaction() as session:
        store.update(
            session, render, now=now_ms(), status="rendering", job_id="job", bucket_name="b"
        )
        store.update(session, render, now=now_ms(), progress=40)
    with db.transaction() as session, pytest.raises(store.InvalidUpdate, match="go down"):
        store.update(session, render, now=now_ms(), progress=39)
    for bad in (101, -1, 50.5, True):
        with db.transaction() as session, pytest.raises(store.InvalidUpdate):
            store.update(session, render, now=now_ms(), progress=bad)
    with db.transaction() as session:
        done = store.update(session, render, now=now_ms(), status="complete", output_key="k")
        assert (done.progress, done.completed_at is not None) == (100, True)
    for change in ({"status": "rendering"}, {"status": "failed"}, {"progress": 100, "error": "x"}):
        with db.transaction() as session, pytest.raises(store.InvalidUpdate):
            store.update(session, render, now=now_ms(), **change)
    with db.transaction() as session:  # re-signing a finished render's URL is allowed
        assert store.update(session, render, now=now_ms(), output_url="https://x").output_url
    with db.transaction() as session, pytest.raises(store.InvalidUpdate, match="not updatable"):
        store.update(session, render, now=now_ms(), user_id="someone-else")


def test_failed_is_final(db: Database) -> None:
    user = make_user(db)
    render = make_render(db, user, make_generation(db, user))
    with db.transaction() as session:
        store.update(session, render, now=now_ms(), status="failed", error="Render cancelled.")
    with db.transaction() as session, pytest.raises(store.InvalidUpdate):
        store.update(session, render, now=now_ms(), status="complete")


def test_database_rejects_what_slips_past(db: Database) -> None:
    user = make_user(db)
    generation = make_generation(db, user)
    render = make_render(db, user, generation)
    statements = [
        ("UPDATE renders SET status = 'exploded' WHERE id = :id", {"id": render}),
        ("UPDATE renders SET progress = 101 WHERE id = :id", {"id": render}),
        ("UPDATE renders SET progress = -1 WHERE id = :id", {"id": render}),
        ("UPDATE renders SET generation_id = 'missing' WHERE id = :id", {"id": render}),
        ("UPDATE generations SET status = 'weird' WHERE id = :id", {"id": generation}),
    ]
    for sql, params in statements:
        with pytest.raises(IntegrityError), db.transaction() as session:
            session.execute(text(sql), params)


def test_generation_props_are_validated_before_storing(db: Database) -> None:
    user = make_user(db)
    with pytest.raises(ValueError, match="color"), db.transaction() as session:
        store.create_generation(session, user, {"text": "x", "style": "scale", "color": "red"})
    with db.session() as session:
        assert store.list_generations(session, user).items == []


def test_generations_list_newest_first(db: Database) -> None:
    user = make_user(db)
    made = [make_generation(db, user, text=f"n{i}") for i in range(3)]
    with db.session() as session:
        page = store.list_generations(session, user, limit=2)
        assert [g.id for g in page.items] == made[::-1][:2]
        rest = store.list_generations(session, user, limit=2, cursor=page.next_cursor)
        assert [g.id for g in rest.items] == [made[0]] and rest.next_cursor is None
        assert page.items[0].animation_props["text"] == "n2"
