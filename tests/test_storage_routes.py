"""The local download route over real HTTP: a uvicorn server on loopback, httpx and raw sockets."""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from renderlab.api.downloads import files_router
from renderlab.storage import LinkOptions, LocalStorage, signing

SECRET = b"route-test-secret-0123456789abcd"
VIDEO = os.urandom(1000)
KEY = "renders/r1/output.mp4"


@dataclass
class Served:
    storage: LocalStorage
    base_url: str
    port: int


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("served")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    storage = LocalStorage(tmp / "storage", secret=SECRET, public_url=base_url)
    (tmp / "secret.txt").write_text("outside the storage root")
    app = FastAPI()
    app.include_router(files_router(lambda: storage))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Served(storage, base_url, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def video(served: Served, tmp_path: Path) -> str:
    source = tmp_path / "in.mp4"
    source.write_bytes(VIDEO)
    served.storage.put_file(KEY, source, "video/mp4")
    return KEY


def _url(served: Served, filename: str = "Nuit étoilée 東京.mp4", ttl: int = 600) -> str:
    return served.storage.signed_url(KEY, LinkOptions(expires_in_s=ttl, filename=filename)).url


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _raw_get(served: Served, target: str) -> tuple[int, bytes]:
    """Send ``target`` byte for byte: clients would normalise ``..`` away before sending."""
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


def test_full_download(served: Served, client: httpx.Client, video: str) -> None:
    response = client.get(_url(served, ttl=600))
    assert response.status_code == 200
    assert response.content == VIDEO
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-length"] == "1000"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-disposition"] == (
        'attachment; filename="Nuit etoilee __.mp4"; '
        "filename*=UTF-8''Nuit%20%C3%A9toil%C3%A9e%20%E6%9D%B1%E4%BA%AC.mp4"
    )
    cache = response.headers["cache-control"]
    assert cache.startswith("private, max-age=")
    assert 590 <= int(cache.rsplit("=", 1)[1]) <= 600


def test_range_gives_206(served: Served, client: httpx.Client, video: str) -> None:
    url = _url(served)
    response = client.get(url, headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert response.content == VIDEO[:100]
    assert response.headers["content-range"] == "bytes 0-99/1000"
    assert response.headers["content-length"] == "100"
    assert response.headers["content-type"] == "video/mp4"
    assert "filename*=UTF-8''" in response.headers["content-disposition"]

    tail = client.get(url, headers={"Range": "bytes=900-"})
    assert (tail.status_code, tail.content) == (206, VIDEO[900:])
    assert tail.headers["content-range"] == "bytes 900-999/1000"
    suffix = client.get(url, headers={"Range": "bytes=-10"})
    assert (suffix.status_code, suffix.content) == (206, VIDEO[-10:])


def test_unsatisfiable_range_is_416(served: Served, client: httpx.Client, video: str) -> None:
    response = client.get(_url(served), headers={"Range": "bytes=5000-6000"})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */1000"


def test_head(served: Served, client: httpx.Client, video: str) -> None:
    response = client.head(_url(served))
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "1000"
    assert response.headers["content-type"] == "video/mp4"


@pytest.mark.parametrize("field", ["key", "expires", "filename", "sig"])
def test_any_altered_field_is_403(
    served: Served, client: httpx.Client, video: str, tmp_path: Path, field: str
) -> None:
    other = tmp_path / "other.mp4"
    other.write_bytes(b"someone else's video")
    served.storage.put_file("renders/r2/output.mp4", other, "video/mp4")
    url = _url(served, filename="mine.mp4")
    query = parse_qs(urlsplit(url).query)
    sig = query["sig"][0]
    tampered = {
        "key": url.replace("/r1/", "/r2/"),
        "expires": _with_query(url, expires=str(int(query["expires"][0]) + 86400)),
        "filename": _with_query(url, filename="renamed.exe"),
        "sig": _with_query(url, sig=("A" if sig[0] != "A" else "B") + sig[1:]),
    }[field]
    assert tampered != url
    response = client.get(tampered)
    assert response.status_code == 403
    assert _error_code(response) == "forbidden"
    assert response.headers["cache-control"] == "no-store"
    assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "",
        "expires=&filename=a.mp4&sig=x",
        "expires=abc&filename=a.mp4&sig=x",
        "expires=-1&filename=a.mp4&sig=x",
        "expires=1e12&filename=a.mp4&sig=x",
        "expires=99999999999999999999999&filename=a.mp4&sig=x",
        "expires=4102444800&sig=x",
        "expires=4102444800&filename=a.mp4",
        "expires=4102444800&filename=a.mp4&sig=%FF%FE",
        "expires=%00&filename=%00&sig=%00",
    ],
)
def test_missing_or_garbage_parameters_are_403(
    served: Served, client: httpx.Client, video: str, query: str
) -> None:
    response = client.get(f"{served.base_url}/files/{KEY}?{query}")
    assert response.status_code == 403
    assert _error_code(response) == "forbidden"


def test_expired_link_is_403_url_expired(served: Served, client: httpx.Client, video: str) -> None:
    signed = served.storage.signed_url(
        KEY, LinkOptions(expires_in_s=60, filename="a.mp4", now=time.time() - 3600)
    )
    response = client.get(signed.url)
    assert response.status_code == 403
    assert _error_code(response) == "url_expired"
    assert "expired" in response.json()["error"]["message"]
    assert "new" in response.json()["error"]["message"]


def test_deleted_file_is_404(served: Served, client: httpx.Client, video: str) -> None:
    url = _url(served)
    served.storage.delete(KEY)
    response = client.get(url)
    assert response.status_code == 404
    assert _error_code(response) == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/%2E%2E%2Fsecret.txt",
        "/files/renders/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "/files/..%5Csecret.txt",
        "/files/%2Fetc%2Fpasswd",
        "/files//etc/passwd",
        "/files/renders%00/output.mp4",
    ],
)
def test_traversal_is_refused_even_with_a_valid_signature(served: Served, path: str) -> None:
    """Sign the decoded key with the real secret: the route must still refuse it."""
    key = unquote(path).removeprefix("/files/")  # what the server hands the route
    expires = int(time.time()) + 600
    sig = signing.sign(signing.LinkFields(key, expires, "a.mp4"), SECRET)
    query = urlencode({"expires": expires, "filename": "a.mp4", "sig": sig})
    status, body = _raw_get(served, f"{path}?{query}")
    assert status == 403
    assert b'"code":"forbidden"' in body
    assert b"outside the storage root" not in body
    assert b"root:" not in body


@pytest.mark.parametrize(
    ("range_header", "status"),
    [
        ("bytes=5000-6000", 416),
        ("bytes=1000-", 416),
        ("lines=0-10", 400),
        ("bytes0-10", 400),
        ("bytes=x-y", 400),
        ("bytes=50-10", 400),
    ],
)
def test_a_bad_range_answers_in_the_error_shape(
    served: Served, client: httpx.Client, video: str, range_header: str, status: int
) -> None:
    """Starlette answers these with a plain-text 400 and an empty 416: the contract says every
    4xx of a signed download URL is ``{"error": {"code", "message"}}``."""
    for method in ("GET", "HEAD"):
        response = client.request(method, _url(served), headers={"Range": range_header})
        assert response.status_code == status, (method, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.headers["cache-control"] == "no-store"
        if status == 416:
            assert response.headers["content-range"] == "bytes */1000"
        if method == "GET":
            error = response.json()["error"]
            assert error["code"] == ("range_not_satisfiable" if status == 416 else "bad_request")
            assert error["message"].endswith(".")
    assert client.get(_url(served), headers={"Range": "bytes=0-9"}).status_code == 206


def test_a_link_serves_the_disposition_and_type_it_was_signed_with(
    served: Served, client: httpx.Client, video: str
) -> None:
    url = served.storage.signed_url(
        KEY,
        LinkOptions(
            expires_in_s=600, filename="c.webm", disposition="inline", content_type="video/webm"
        ),
    ).url
    response = client.get(url)
    assert response.status_code == 200 and response.content == VIDEO
    assert response.headers["content-type"] == "video/webm"
    assert response.headers["content-disposition"].startswith('inline; filename="c.webm"')
    for name, value in (("disposition", "attachment"), ("type", "text/html")):
        forged = client.get(_with_query(url, **{name: value}))
        assert forged.status_code == 403 and _error_code(forged) == "forbidden"
    nonsense = client.get(_with_query(url, disposition="evil"))
    assert nonsense.status_code == 403 and _error_code(nonsense) == "forbidden"
