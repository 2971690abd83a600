"""Identity: zero-setup HS256 tokens, RS256 tokens checked against a JWKS served on loopback,
and every way a token can be wrong answering 401."""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from renderlab.api import create_app
from renderlab.api.auth import LOCAL_ISSUER, SECRET_FILE
from renderlab.cli import app as cli
from renderlab.config import Settings, get_settings
from renderlab.db import Database
from renderlab.limits import Limits, get_limits
from renderlab.models import User
from renderlab.services import Services
from tests.api_helpers import bearer, identity_provider


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_template: Path) -> Database:
    path = tmp_path / "auth.db"
    path.write_bytes(sqlite_template.read_bytes())
    return Database(f"sqlite:///{path}")


def local_client(
    tmp_path: Path, db: Database, limits: Limits | None = None, **settings: object
) -> TestClient:
    services = Services(
        settings=Settings(data_dir=tmp_path / "data", database_url=db.url, **settings),
        limits=limits or Limits(),
        db=db,
    )
    return TestClient(create_app(services), raise_server_exceptions=False)


@dataclass(frozen=True)
class UserRow:
    token_identifier: str
    email: str | None
    name: str | None


def users(db: Database) -> list[UserRow]:
    with db.session() as session:
        rows = session.execute(select(User).order_by(User.created_at)).scalars()
        return [UserRow(u.token_identifier, u.email, u.name) for u in rows]


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def assert_401(response: object) -> None:
    assert response.status_code == 401, response.text  # type: ignore[attr-defined]
    assert response.json()["error"]["code"] == "unauthorized"  # type: ignore[attr-defined]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")  # type: ignore[attr-defined]


# -- zero-setup mode --------------------------------------------------------------------------


def test_local_token_identifies_the_user_and_creates_the_row_once(
    tmp_path: Path, sqlite_db: Database
) -> None:
    client = local_client(tmp_path, sqlite_db)
    headers = bearer(client.app, "alice")  # type: ignore[arg-type]
    for _ in range(3):
        response = client.get("/v1/quota", headers=headers)
        assert response.status_code == 200, response.text
    rows = users(sqlite_db)
    assert [(u.token_identifier, u.name) for u in rows] == [(f"{LOCAL_ISSUER}|alice", "alice")]


def test_secret_is_generated_once_into_the_data_dir(tmp_path: Path, sqlite_db: Database) -> None:
    first = local_client(tmp_path, sqlite_db)
    token = bearer(first.app, "alice")  # type: ignore[arg-type]
    secret = (tmp_path / "data" / SECRET_FILE).read_text()
    assert len(secret) >= 32
    restarted = local_client(tmp_path, sqlite_db)  # a new process reads the same secret
    assert restarted.get("/v1/quota", headers=token).status_code == 200


def test_a_configured_secret_is_used(tmp_path: Path, sqlite_db: Database) -> None:
    secret = "s" * 40
    client = local_client(tmp_path, sqlite_db, jwt_secret=secret)
    now = int(time.time())
    claims = {"iss": LOCAL_ISSUER, "sub": "bob", "exp": now + 60}
    good = jwt.encode(claims, secret, algorithm="HS256")
    assert client.get("/v1/quota", headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_a_short_configured_secret_is_refused(tmp_path: Path, sqlite_db: Database) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        local_client(tmp_path, sqlite_db, jwt_secret="short")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer not-a-jwt",
        "Basic YWxpY2U6c2VjcmV0",
        "Token abc",
    ],
)
def test_missing_or_malformed_credentials_are_401(
    tmp_path: Path, sqlite_db: Database, header: str | None
) -> None:
    client = local_client(tmp_path, sqlite_db)
    headers = {} if header is None else {"Authorization": header}
    assert_401(client.get("/v1/renders", headers=headers))


def _local_token(secret: str, **claims: object) -> str:
    now = int(time.time())
    payload = {"iss": LOCAL_ISSUER, "sub": "mallory", "iat": now, "exp": now + 600, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def test_bad_local_tokens_are_401(tmp_path: Path, sqlite_db: Database) -> None:
    client = local_client(tmp_path, sqlite_db)
    bearer(client.app, "x")  # makes the secret
    secret = (tmp_path / "data" / SECRET_FILE).read_text()
    good = _local_token(secret)
    header, payload, signature = good.split(".")
    now = int(time.time())
    cases = {
        "none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "tampered": f"{header}.{b64({'iss': LOCAL_ISSUER, 'sub': 'admin', 'exp': now + 600})}"
        f".{signature}",
        "other secret": _local_token("another-secret-that-is-long-enough-000"),
        "expired": _local_token(secret, exp=now - 3600, iat=now - 7200),
        "wrong issuer": _local_token(secret, iss="https://evil.test"),
        "no exp": jwt.encode({"iss": LOCAL_ISSUER, "sub": "m"}, secret, algorithm="HS256"),
        "no sub": jwt.encode({"iss": LOCAL_ISSUER, "exp": now + 60}, secret, algorithm="HS256"),
        "HS512": jwt.encode(
            {"iss": LOCAL_ISSUER, "sub": "m", "exp": now + 60}, secret, algorithm="HS512"
        ),
    }
    assert client.get("/v1/quota", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    for name, token in cases.items():
        response = client.get("/v1/quota", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert_401(response)
    identifiers = {u.token_identifier for u in users(sqlite_db)}
    assert identifiers == {f"{LOCAL_ISSUER}|mallory"}  # only the good token made a user
    for name in ("other secret", "tampered"):  # minted for another data dir, or altered
        other = client.get("/v1/quota", headers={"Authorization": f"Bearer {cases[name]}"})
        assert other.json()["error"]["message"] == (
            "The bearer token was signed with another secret than this server's: mint it with"
            " `renderlab token NAME` and the server's RENDERLAB_DATA_DIR, or sign in again."
        )


def test_a_remembered_token_still_expires(tmp_path: Path, sqlite_db: Database) -> None:
    client = local_client(tmp_path, sqlite_db, Limits(jwt_leeway_s=0))
    bearer(client.app, "x")  # makes the secret
    secret = (tmp_path / "data" / SECRET_FILE).read_text()
    token = _local_token(secret, exp=int(time.time()) + 2)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/quota", headers=headers).status_code == 200
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    assert_401(client.get("/v1/quota", headers=headers))


def test_token_route_issues_a_working_token(tmp_path: Path, sqlite_db: Database) -> None:
    client = local_client(tmp_path, sqlite_db)
    response = client.post("/v1/auth/token", json={"name": "  Ada Lovelace "})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["expires_at"])
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert (claims["iss"], claims["sub"]) == (LOCAL_ISSUER, "Ada Lovelace")
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/v1/quota", headers=headers).status_code == 200
    bad = client.post("/v1/auth/token", json={"name": "   "})
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "name"
    extra = client.post("/v1/auth/token", json={"name": "a", "admin": True})
    assert extra.status_code == 422
    assert extra.json()["error"]["fields"][0]["field"] == "admin"


def test_cli_token_prints_a_token_the_api_accepts(
    tmp_path: Path, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENDERLAB_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    get_limits.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["token", "carol"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    client = local_client(tmp_path, sqlite_db)
    response = client.get("/v1/quota", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert [u.token_identifier for u in users(sqlite_db)] == [f"{LOCAL_ISSUER}|carol"]


def test_cli_token_refuses_in_identity_provider_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENDERLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RENDERLAB_JWKS_URL", "https://idp.test/.well-known/jwks.json")
    monkeypatch.setenv("RENDERLAB_JWT_ISSUER", "https://idp.test")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["token", "carol"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "identity provider" in result.output
    assert not (tmp_path / "data" / SECRET_FILE).exists()


# -- identity provider mode (RS256 + JWKS on loopback) -----------------------------------------


def idp_client(tmp_path: Path, db: Database, jwks_url: str, issuer: str, audience: str | None):
    services = Services(
        settings=Settings(
            data_dir=tmp_path / "data",
            database_url=db.url,
            jwks_url=jwks_url,
            jwt_issuer=issuer,
            jwt_audience=audience,
        ),
        limits=Limits(),
        db=db,
    )
    return TestClient(create_app(services), raise_server_exceptions=False)


def test_rs256_token_from_the_provider_creates_the_user_with_profile_claims(
    tmp_path: Path, sqlite_db: Database
) -> None:
    with identity_provider() as idp:
        client = idp_client(tmp_path, sqlite_db, idp.jwks_url, idp.issuer, idp.audience)
        token = idp.token("user_2abc", email="ada@example.com", name="Ada")
        for _ in range(3):
            response = client.get("/v1/quota", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
        assert idp.fetches == 1  # the key set is cached
    [user] = users(sqlite_db)
    assert user.token_identifier == f"{idp.issuer}|user_2abc"
    assert (user.email, user.name) == ("ada@example.com", "Ada")


def test_rs256_mode_refuses_every_other_kind_of_token(tmp_path: Path, sqlite_db: Database) -> None:
    with identity_provider() as idp:
        client = idp_client(tmp_path, sqlite_db, idp.jwks_url, idp.issuer, idp.audience)
        public_pem = idp.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        now = int(time.time())
        claims = {"iss": idp.issuer, "aud": idp.audience, "sub": "eve", "exp": now + 600}
        good = idp.token("eve")
        header, _payload, signature = good.split(".")
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cases = {
            "none": f"{b64({'alg': 'none', 'kid': idp.kid})}.{b64(claims)}.",
            "HS256 with the public key as secret": _hs256_with_public_key(claims, public_pem, idp),
            "HS256 with a local secret": jwt.encode(
                claims, "x" * 40, algorithm="HS256", headers={"kid": idp.kid}
            ),
            "expired": idp.token("eve", expires_in=-3600),
            "wrong issuer": idp.token("eve", iss="https://evil.test"),
            "wrong audience": idp.token("eve", aud="someone-else"),
            "tampered": f"{header}.{b64({**claims, 'sub': 'admin'})}.{signature}",
            "signed by another key": idp.token("eve", key=other_key),
            "unknown kid": idp.token("eve", key=other_key, kid="rotated-away"),
        }
        assert (
            client.get("/v1/quota", headers={"Authorization": f"Bearer {good}"}).status_code == 200
        )
        for name, token in cases.items():
            response = client.get("/v1/quota", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, name
            assert_401(response)
        # Local tokens are not handed out when a provider is configured.
        assert client.post("/v1/auth/token", json={"name": "eve"}).status_code == 404
    assert [u.token_identifier for u in users(sqlite_db)] == [f"{idp.issuer}|eve"]


def _hs256_with_public_key(claims: dict[str, object], pem: bytes, idp: object) -> str:
    header = {"alg": "HS256", "typ": "JWT", "kid": "test-key-1"}
    import hashlib
    import hmac

    signing_input = f"{b64(header)}.{b64(claims)}".encode()
    signature = hmac.new(pem, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def test_jwks_mode_needs_an_audience(tmp_path: Path, sqlite_db: Database) -> None:
    # Without one, tokens the same provider issued for any other application would pass.
    with pytest.raises(ValueError, match="RENDERLAB_JWT_AUDIENCE"):
        idp_client(tmp_path, sqlite_db, "https://idp.test/jwks.json", "https://idp.test", None)


def test_unreachable_jwks_is_503_not_401(tmp_path: Path, sqlite_db: Database) -> None:
    with identity_provider() as idp:
        token = idp.token("gina")
        url = idp.jwks_url
    client = idp_client(tmp_path, sqlite_db, url, idp.issuer, idp.audience)  # server is gone
    response = client.get("/v1/quota", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "identity_provider_unavailable"


def test_jwks_mode_needs_an_issuer(tmp_path: Path, sqlite_db: Database) -> None:
    with pytest.raises(ValueError, match="RENDERLAB_JWT_ISSUER"):
        idp_client(tmp_path, sqlite_db, "https://idp.test/jwks.json", "", None)
