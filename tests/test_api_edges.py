"""HTTP edges: body size limit (declared and chunked), CORS closed by default and configurable,
security headers everywhere, and no stack trace ever reaching a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from renderlab.config import Settings
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.services import Services
from tests.api_helpers import Api, bearer, live_server, make_api
from tests.factories import PROPS

SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
}


@pytest.fixture
def sqlite_services(tmp_path: Path, sqlite_template: Path) -> Iterator[Services]:
    path = tmp_path / "edges.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(f"sqlite:///{path}")
    yield Services(
        settings=Settings(data_dir=tmp_path / "data", database_url=db.url), limits=Limits(), db=db
    )
    db.dispose()


def big_body(size: int) -> bytes:
    """A JSON generation whose prompt makes the body ``size`` bytes long."""
    head = b'{"animation_props": {"text": "x", "style": "scale", "color": "#FFFFFF"}, "prompt": "'
    return head + b"p" * (size - len(head) - 2) + b'"}'


def assert_secure(response: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, (name, response.status_code)


def test_declared_body_over_the_limit_is_413(sqlite_services: Services) -> None:
    api = Api(make_api(sqlite_services), "alice")
    limit = sqlite_services.limits.max_body_bytes
    at_limit = api.post(
        "/v1/generations", content=big_body(limit), headers={"Content-Type": "application/json"}
    )
    assert at_limit.status_code == 201, at_limit.text
    over = api.post(
        "/v1/generations", content=big_body(limit + 1), headers={"Content-Type": "application/json"}
    )
    assert over.status_code == 413
    assert over.json()["error"]["code"] == "payload_too_large"
    assert_secure(over)


def test_chunked_body_over_the_limit_is_413_over_real_http(sqlite_services: Services) -> None:
    app = make_api(sqlite_services)
    headers = {**bearer(app, "alice"), "Content-Type": "application/json"}
    limit = sqlite_services.limits.max_body_bytes

    def chunks(body: bytes) -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    with live_server(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        small = client.post("/v1/generations", content=chunks(big_body(20_000)), headers=headers)
        assert small.status_code == 201, small.text
        big = client.post("/v1/generations", content=chunks(big_body(limit * 4)), headers=headers)
        assert big.status_code == 413
        assert big.json()["error"]["code"] == "payload_too_large"
        assert big.request.headers.get("transfer-encoding") == "chunked"


def test_security_headers_on_every_kind_of_response(sqlite_services: Services) -> None:
    app = make_api(sqlite_services)
    api = Api(app, "alice")
    anonymous = TestClient(app, raise_server_exceptions=False)
    responses = [
        anonymous.get("/healthz"),
        anonymous.get("/openapi.json"),
        anonymous.get("/v1/quota"),  # 401
        api.get("/v1/renders/01ARZ3NDEKTSV4RRFFQ69G5FAV"),  # 404
        api.get("/no/such/route"),  # 404
        api.post("/v1/generations", json={}),  # 422
        anonymous.delete("/v1/quota"),  # 405
        api.get("/v1/quota"),
    ]
    for response in responses:
        assert_secure(response)
        assert response.json()["error"] if response.status_code >= 400 else True


def test_unexpected_errors_are_500_without_a_trace(
    sqlite_services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_api(sqlite_services)

    def explode() -> None:
        raise RuntimeError("secret internals: /etc/passwd at line 42")

    app.add_api_route("/explode", explode)
    client = TestClient(app, raise_server_exceptions=False)
    response = client.get("/explode")
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "Something went wrong on our side. Please try again.",
        }
    }
    assert "secret" not in response.text and "Traceback" not in response.text
    assert response.headers["Connection"] == "close"  # the server drops it after a crash
    assert_secure(response)
    assert "secret internals" in caplog.text  # ... but the log has it


def test_database_down_is_503_with_retry_after_everywhere_and_no_internals(
    tmp_path: Path,
) -> None:
    db = Database("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=1")
    services = Services(
        settings=Settings(data_dir=tmp_path / "data", database_url=db.url), limits=Limits(), db=db
    )
    app = make_api(services)
    client = TestClient(app, raise_server_exceptions=False)
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["error"]["code"] == "unavailable"
    assert health.headers["Retry-After"] == "5"
    response = client.get("/v1/renders", headers=bearer(app, "alice"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json()["error"] == {
        "code": "unavailable",
        "message": "The database is not reachable. Please try again shortly.",
    }
    assert "psycopg" not in response.text and "127.0.0.1" not in response.text


def test_cors_is_closed_by_default(sqlite_services: Services) -> None:
    app = make_api(sqlite_services)
    client = TestClient(app)
    origin = {"Origin": "https://evil.test"}
    simple = client.get("/healthz", headers=origin)
    assert "access-control-allow-origin" not in simple.headers
    preflight = client.options(
        "/v1/renders",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_configured_origins_only(tmp_path: Path, sqlite_template: Path) -> None:
    path = tmp_path / "cors.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(f"sqlite:///{path}")
    settings = Settings(
        data_dir=tmp_path / "data", database_url=db.url, cors_origins=["https://app.test"]
    )
    app = make_api(Services(settings=settings, limits=Limits(), db=db))
    client = TestClient(app)
    preflight = client.options(
        "/v1/renders",
        headers={
            "Origin": "https://app.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.test"
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "idempotency-key" in allowed
    actual = client.get("/v1/quota", headers={"Origin": "https://app.test", **bearer(app, "a")})
    assert actual.headers["access-control-allow-origin"] == "https://app.test"
    assert "ratelimit" in actual.headers["access-control-expose-headers"].lower()
    other = client.get("/healthz", headers={"Origin": "https://evil.test"})
    assert "access-control-allow-origin" not in other.headers
    refused = client.options(
        "/v1/renders",
        headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    db.dispose()


def test_unknown_routes_and_methods_use_the_error_shape(sqlite_services: Services) -> None:
    api = Api(make_api(sqlite_services), "alice")
    missing = api.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = api.client.put("/v1/renders", headers=api.headers, json={})
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    generation = api.post("/v1/generations", json={"animation_props": PROPS}).json()
    assert generation["id"]


def test_web_page_is_mounted_and_framing_is_refused(sqlite_services: Services) -> None:
    client = TestClient(make_api(sqlite_services))
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy  # the page's own policy is kept
    assert page.headers["x-content-type-options"] == "nosniff"
