"""The JWT attack set over real HTTP, for the cases `tests/test_api_auth.py` does not already
cover (it has alg none, HS/RS confusion, expired, wrong iss/aud, tampered payload, other key,
unknown kid): a not-yet-valid token, hostile ``kid``/``jku``/``x5u`` headers, tokens too big
for any sane header, and garbage shapes. Each must be a 401 (or a 4xx from the HTTP layer for
an oversize header) and must create no user, so a hostile token can never write anything."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from renderlab.api import create_app
from renderlab.api.auth import LOCAL_ISSUER
from renderlab.config import Settings
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.models import User
from renderlab.services import Services
from tests.api_helpers import identity_provider, live_server

SECRET = "security-secret-" + "s" * 40


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_template: Path) -> Database:
    path = tmp_path / "sec.db"
    path.write_bytes(sqlite_template.read_bytes())
    return Database(f"sqlite:///{path}")


def user_count(db: Database) -> int:
    with db.session() as session:
        return session.execute(select(func.count()).select_from(User)).scalar_one()


def local_token(**claims: object) -> str:
    now = int(time.time())
    payload = {"iss": LOCAL_ISSUER, "sub": "mallory", "iat": now, "exp": now + 600, **claims}
    return jwt.encode(payload, SECRET, algorithm="HS256")


def empty_key_token(header: dict[str, object], payload: dict[str, object]) -> str:
    """HS256 with an empty key, which PyJWT refuses to produce: the classic kid-to-/dev/null."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(b"", signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def assert_all_refused(base: str, cases: dict[str, str]) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        for name, token in cases.items():
            response = client.get("/v1/quota", headers={"Authorization": f"Bearer {token}"})
            if response.status_code == 401:
                assert response.json()["error"]["code"] == "unauthorized", name
                assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
            else:
                # Only the HTTP layer may answer otherwise, for headers past its size limit.
                assert response.status_code in (400, 413, 431), (name, response.status_code)


def test_local_mode_refuses_the_rest_of_the_attack_set(tmp_path: Path, sqlite_db: Database) -> None:
    services = Services(
        settings=Settings(
            data_dir=tmp_path / "data", database_url=sqlite_db.url, jwt_secret=SECRET
        ),
        limits=Limits(jwt_leeway_s=10),
        db=sqlite_db,
    )
    now = int(time.time())
    cases = {
        "nbf in the future": local_token(nbf=now + 3600),
        "expired past the leeway": local_token(exp=now - 60),
        "kid path traversal, signed with /dev/null's empty content": empty_key_token(
            {"alg": "HS256", "typ": "JWT", "kid": "../../../../dev/null"},
            {"iss": LOCAL_ISSUER, "sub": "m", "exp": now + 60},
        ),
        "kid sql injection": jwt.encode(
            {"iss": LOCAL_ISSUER, "sub": "m", "exp": now + 60},
            "x" * 40,
            algorithm="HS256",
            headers={"kid": "' OR '1'='1"},
        ),
        "jku pointing elsewhere": jwt.encode(
            {"iss": LOCAL_ISSUER, "sub": "m", "exp": now + 60},
            "y" * 40,
            algorithm="HS256",
            headers={"jku": "http://127.0.0.1:1/keys.json", "x5u": "http://127.0.0.1:1/x"},
        ),
        "oversize payload (64 KiB), other secret": jwt.encode(
            {"iss": LOCAL_ISSUER, "sub": "m", "exp": now + 60, "pad": "A" * 65536},
            "z" * 40,
            algorithm="HS256",
        ),
        "oversize junk (1 MiB)": "a" * (1 << 20),
        "two segments": "abc.def",
        "four segments": "a.b.c.d",
        "non-base64": "!!!.@@@.###",
        "empty signature": local_token().rsplit(".", 1)[0] + ".",
        "sub not a string": jwt.encode(
            {"iss": LOCAL_ISSUER, "sub": 12345, "exp": now + 60}, SECRET, algorithm="HS256"
        ),
        "validly signed but oversize (16 KiB)": local_token(pad="A" * 16384),
    }
    with live_server(create_app(services)) as base:
        good = local_token()
        with httpx.Client(base_url=base) as client:
            ok = client.get("/v1/quota", headers={"Authorization": f"Bearer {good}"})
            assert ok.status_code == 200
        before = user_count(sqlite_db)
        assert_all_refused(base, cases)
        assert user_count(sqlite_db) == before


def test_rs256_mode_refuses_not_yet_valid_and_hostile_headers(
    tmp_path: Path, sqlite_db: Database
) -> None:
    with identity_provider() as idp:
        services = Services(
            settings=Settings(
                data_dir=tmp_path / "data",
                database_url=sqlite_db.url,
                jwks_url=idp.jwks_url,
                jwt_issuer=idp.issuer,
                jwt_audience=idp.audience,
            ),
            limits=Limits(),
            db=sqlite_db,
        )
        now = int(time.time())
        cases = {
            "nbf in the future": idp.token("eve", nbf=now + 3600),
            "kid path traversal": idp.token("eve", kid="../../etc/passwd"),
            "kid sql injection": idp.token("eve", kid="x' UNION SELECT 1 --"),
            "oversize payload (64 KiB), another key": idp.token(
                "eve",
                key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
                pad="A" * 65536,
            ),
        }
        with live_server(create_app(services)) as base:
            before = user_count(sqlite_db)
            fetches = idp.fetches
            assert_all_refused(base, cases)
            assert user_count(sqlite_db) == before
            # Unknown kids refetch the JWKS at most once in the 30 s window, not per token.
            assert idp.fetches - fetches <= 1
