"""Identity modes that are safe to deploy, and what must not leak (issue 17, items 1, 2, 5).

``RENDERLAB_AUTH``: ``dev`` (sign in with any name) is the default only when nothing else is
configured and ``serve`` refuses it on a public address unless it was chosen explicitly;
``hs256`` has no sign-in route; ``jwks`` needs an audience. A validly signed token whose claims
cannot be stored is a 401. Names are one user whatever their Unicode normalisation. JSON with
tokens or signed URLs is never cached, storage keys name no user, and the SQLite files are
private. Real ``renderlab serve`` processes, SQLite and PostgreSQL.
"""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from renderlab.api import create_app
from renderlab.cli import app as cli
from renderlab.config import Settings, get_settings
from renderlab.db import Database, upgrade
from renderlab.limits import get_limits
from renderlab.models import User
from renderlab.services import Services
from renderlab.storage import keys
from tests.api_helpers import Api, make_api
from tests.factories import PROPS
from tests.serve_helpers import ROOT, renderlab, serve, serve_env

SECRET = "backend-secret-" + "x" * 40


def client_in(services: Services, **settings: Any) -> TestClient:
    services.settings = Settings(
        data_dir=services.settings.data_dir, database_url=services.db.url, **settings
    )
    return TestClient(create_app(services), raise_server_exceptions=False)


def backend_token(**claims: Any) -> str:
    """A token as the app's backend mints it in hs256 mode."""
    now = int(time.time())
    return jwt.encode({"iss": "renderlab", "exp": now + 600, **claims}, SECRET, algorithm="HS256")


def user_count(db: Database) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(User)).scalar_one()


# -- item 1: the modes --------------------------------------------------------------------------


def test_the_mode_follows_what_is_configured(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).auth_mode == "dev"
    assert Settings(data_dir=tmp_path, jwt_secret=SECRET).auth_mode == "hs256"
    assert Settings(data_dir=tmp_path, jwks_url="https://idp.test/jwks").auth_mode == "jwks"
    explicit = Settings(data_dir=tmp_path, auth="dev", jwt_secret=SECRET)
    assert (explicit.auth_mode, explicit.auth_explicit) == ("dev", True)


def test_hs256_has_no_sign_in_route_and_takes_backend_tokens(services: Services) -> None:
    client = client_in(services, auth="hs256", jwt_secret=SECRET)
    assert client.post("/v1/auth/token", json={"name": "eve"}).status_code == 404
    assert "/v1/auth/token" not in client.get("/openapi.json").json()["paths"]
    assert client.get("/healthz").json()["auth"] == "hs256"
    token = backend_token(sub="alice")
    response = client.get("/v1/quota", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


def test_hs256_needs_the_backend_secret(services: Services) -> None:
    with pytest.raises(ValueError, match="RENDERLAB_JWT_SECRET"):
        client_in(services, auth="hs256")


def test_dev_mode_says_so_on_healthz(services: Services) -> None:
    assert client_in(services).get("/healthz").json() == {
        "status": "ok",
        "database": "ok",
        "auth": "dev",
    }


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--host", "0.0.0.0"], {}),
        (["--host", "192.0.2.10"], {}),
        ([], {"RENDERLAB_PUBLIC_URL": "https://renderlab.example.com"}),
    ],
    ids=["all-interfaces", "lan-address", "public-url"],
)
def test_serve_refuses_default_dev_mode_where_others_can_reach_it(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    result = subprocess.run(
        renderlab("serve", "--port", "0", *args),
        env=serve_env(tmp_path / "data", **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "RENDERLAB_AUTH" in result.stderr
    assert not (tmp_path / "data" / "renderlab.db").exists()  # refused before doing anything


def test_serve_in_explicit_dev_mode_behind_a_public_url_starts_and_warns(tmp_path: Path) -> None:
    public = "https://renderlab.example.com"
    with serve(tmp_path / "data", RENDERLAB_AUTH="dev", RENDERLAB_PUBLIC_URL=public) as server:
        assert httpx.get(f"{server.base}/healthz").json()["auth"] == "dev"
    assert "RENDERLAB_AUTH=dev" in server.stderr
    assert "warning" in server.stderr


def test_serve_banner_names_the_hs256_mode(tmp_path: Path) -> None:
    with serve(tmp_path / "data", RENDERLAB_JWT_SECRET=SECRET) as server:
        token = backend_token(sub="alice")
        quota = httpx.get(f"{server.base}/v1/quota", headers={"Authorization": f"Bearer {token}"})
        assert quota.status_code == 200
        assert httpx.post(f"{server.base}/v1/auth/token", json={"name": "a"}).status_code == 404
    assert "RENDERLAB_AUTH=hs256" in server.stderr


# -- item 2: claims that cannot be stored are a 401 ---------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "a\x00b"},
        {"sub": "\ud800"},
        {"sub": "alice", "name": "\udfff"},
        {"sub": "alice", "email": "a\x00@example.com"},
        {"sub": "alice", "name": "n" * 201},
        {"sub": "alice", "email": "e" * 321},
        {"sub": "s" * 600},
    ],
    ids=[
        "nul-sub",
        "surrogate-sub",
        "surrogate-name",
        "nul-email",
        "long-name",
        "long-email",
        "long-sub",
    ],
)
def test_signed_claims_that_cannot_be_stored_are_401(
    services: Services, claims: dict[str, str]
) -> None:
    client = client_in(services, auth="hs256", jwt_secret=SECRET)
    for _ in range(2):  # and the same on a second try (nothing half-created in between)
        response = client.get(
            "/v1/generations", headers={"Authorization": f"Bearer {backend_token(**claims)}"}
        )
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized"
    assert user_count(services.db) == 0


# -- item 5: one user per name, whatever its normalisation --------------------------------------


def test_a_name_is_one_user_in_nfc_and_nfd(services: Services) -> None:
    client = client_in(services)
    composed, decomposed = "Ren\u00e9e", "Rene\u0301e"
    tokens = [
        client.post("/v1/auth/token", json={"name": name}).json()["token"]
        for name in (composed, decomposed)
    ]
    ids = set()
    for token in tokens:
        headers = {"Authorization": f"Bearer {token}"}
        created = client.post("/v1/generations", json={"animation_props": PROPS}, headers=headers)
        assert created.status_code == 201, created.text
        ids.add(created.json()["user_id"])
    assert ids == {f"renderlab|{composed}"}
    assert user_count(services.db) == 1


# -- item 5: no caching of tokens or signed URLs ------------------------------------------------


def test_tokens_and_json_answers_are_not_stored_by_caches(services: Services) -> None:
    client = client_in(services)
    token = client.post("/v1/auth/token", json={"name": "alice"})
    assert token.headers["Cache-Control"] == "no-store"
    api = Api(client.app, "alice", client)  # type: ignore[arg-type]
    generation = api.post("/v1/generations", json={"animation_props": PROPS})
    render = api.post("/v1/renders", json={"generation_id": generation.json()["id"]})
    for response in (
        generation,
        render,
        api.get("/v1/generations"),
        api.get(f"/v1/renders/{render.json()['id']}"),
        api.get("/v1/renders"),
    ):
        assert response.headers["Cache-Control"] == "no-store", response.request.url


# -- item 5: storage keys name no user ----------------------------------------------------------


def test_storage_keys_name_the_render_only() -> None:
    assert keys.output_key("01JRENDER") == "renders/01JRENDER.mp4"
    assert keys.output_key("01JRENDER", "webm") == "renders/01JRENDER.webm"
    assert keys.poster_key("01JRENDER") == "posters/01JRENDER.png"
    for bad in (("", "mp4"), ("a/b", "mp4"), ("r", "../x")):
        with pytest.raises(ValueError):
            keys.output_key(*bad)


def test_new_renders_are_stored_under_a_key_without_the_user(services: Services) -> None:
    from renderlab.pipeline.run import output_key

    app = make_api(services)
    api = Api(app, "alice")
    generation = api.post("/v1/generations", json={"animation_props": PROPS}).json()["id"]
    render_id = api.post("/v1/renders", json={"generation_id": generation}).json()["id"]
    with services.db.session() as session:
        from renderlab.models import Render

        render = session.get(Render, render_id)
        assert render is not None
        key, user_row_id = output_key(render), render.user_id
    assert user_row_id not in key and "alice" not in key
    assert key == keys.output_key(render_id)


# -- item 5: private database files, and `renderlab token` finds serve's data dir ---------------


def test_the_sqlite_database_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "renderlab.db"
    upgrade(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    with db.transaction() as session:
        session.add(User(token_identifier="renderlab|x"))
    with db.session() as session:  # keeps the WAL and SHM open
        session.execute(select(User)).all()
        for suffix in ("", "-wal", "-shm"):
            mode = stat.S_IMODE(Path(f"{path}{suffix}").stat().st_mode)
            assert mode == 0o600, (suffix, oct(mode))
    db.dispose()


def test_an_older_world_readable_database_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    Database(f"sqlite:///{path}").dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def token_cli(monkeypatch: pytest.MonkeyPatch, cwd: Path, **env: str) -> Any:
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("RENDERLAB_DATA_DIR", raising=False)
    monkeypatch.delenv("RENDERLAB_JWT_SECRET", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_limits.cache_clear()
    try:
        return CliRunner().invoke(cli, ["token", "alice"])
    finally:
        get_settings.cache_clear()


def test_token_says_which_data_dir_and_warns_when_it_makes_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fresh = token_cli(monkeypatch, elsewhere)
    assert fresh.exit_code == 0, fresh.output
    warning = next(line for line in fresh.stderr.splitlines() if "warning" in line)
    assert str(elsewhere / "renderlab-data") in warning  # one line, not wrapped for a log
    assert "no secret yet" in warning and "RENDERLAB_DATA_DIR" in warning
    again = token_cli(monkeypatch, elsewhere)  # the secret is there now: no warning
    assert "warning" not in again.stderr and "data dir" in again.stderr
    data = tmp_path / "served"
    explicit = token_cli(monkeypatch, elsewhere, RENDERLAB_DATA_DIR=str(data))
    assert str(data) in explicit.stderr.replace("\n", "")


def test_provider_tokens_with_claims_that_cannot_be_stored_are_401(services: Services) -> None:
    from tests.api_helpers import identity_provider

    with identity_provider() as idp:
        client = client_in(
            services,
            jwks_url=idp.jwks_url,
            jwt_issuer=idp.issuer,
            jwt_audience=idp.audience,
        )
        assert client.get("/healthz").json()["auth"] == "jwks"
        for claims in ({"name": "n" * 201}, {"email": "\ud800@x.test"}, {"name": "a\x00"}):
            token = idp.token("user_2abc", **claims)
            response = client.get("/v1/quota", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (claims, response.text)
        good = idp.token("user_2abc", name="Ada")
        ok = client.get("/v1/quota", headers={"Authorization": f"Bearer {good}"})
        assert ok.status_code == 200, ok.text
    assert user_count(services.db) == 1
