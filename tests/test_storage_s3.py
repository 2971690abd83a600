"""The S3 backend against a real S3-compatible server (moto, server mode, loopback HTTP)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest

from renderlab.storage import (
    InvalidKey,
    LinkOptions,
    ObjectNotFound,
    Storage,
    StorageError,
    StorageUnreachable,
    open_storage,
)
from renderlab.storage.s3 import S3Storage
from tests.s3_server import free_port

SECRET = b"local-only-secret-not-used-by-s3"


def _open(endpoint: str, url: str) -> S3Storage:
    storage = open_storage(url, secret=SECRET, public_url="http://unused", s3_endpoint_url=endpoint)
    assert isinstance(storage, S3Storage)
    return storage


@pytest.fixture
def bucket() -> str:
    return f"rl-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def storage(s3_server: str, s3_credentials: None, bucket: str) -> S3Storage:
    storage = _open(s3_server, f"s3://{bucket}")
    storage.ensure_bucket()
    return storage


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "in.mp4"
    path.write_bytes(os.urandom(1000))
    return path


def _raw_client(endpoint: str) -> Any:  # boto3 clients are untyped
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def test_open_storage_gives_an_s3_backend_named_after_the_bucket(
    storage: S3Storage, bucket: str
) -> None:
    assert isinstance(storage, Storage)
    assert storage.bucket_name == bucket


def test_ensure_bucket_creates_it_once_and_is_idempotent(
    s3_server: str, s3_credentials: None, bucket: str
) -> None:
    storage = _open(s3_server, f"s3://{bucket}")
    with pytest.raises(StorageError, match="does not exist"):
        storage.check_writable()
    storage.ensure_bucket()
    storage.ensure_bucket()
    storage.check_writable()
    names = [b["Name"] for b in _raw_client(s3_server).list_buckets()["Buckets"]]
    assert bucket in names


def test_put_get_exists_delete_round_trip(storage: S3Storage, video: Path, tmp_path: Path) -> None:
    key = "renders/r1/output.mp4"
    assert not storage.exists(key)
    assert storage.put_file(key, video, "video/mp4") == 1000
    assert storage.exists(key)
    out = storage.get_file(key, tmp_path / "nested" / "out.mp4")
    assert out.read_bytes() == video.read_bytes()
    storage.delete(key)
    assert not storage.exists(key)
    storage.delete(key)  # deleting twice is fine
    with pytest.raises(ObjectNotFound):
        storage.get_file(key, tmp_path / "gone.mp4")
    assert not (tmp_path / "gone.mp4").exists()


def test_multipart_upload_of_a_large_file(storage: S3Storage, tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(9 * 1024 * 1024))  # over s3transfer's 8 MiB multipart threshold
    assert storage.put_file("renders/big.mp4", big, "video/mp4") == big.stat().st_size
    assert storage.get_file("renders/big.mp4", tmp_path / "back").read_bytes() == big.read_bytes()


def test_content_type_is_stored(storage: S3Storage, video: Path, s3_server: str) -> None:
    storage.put_file("segments/s/0.ts", video, "video/mp2t")
    head = _raw_client(s3_server).head_object(Bucket=storage.bucket, Key="segments/s/0.ts")
    assert head["ContentType"] == "video/mp2t"


def test_url_prefix_places_objects_in_a_folder(
    s3_server: str, s3_credentials: None, bucket: str, video: Path
) -> None:
    storage = _open(s3_server, f"s3://{bucket}/team/a/")
    storage.ensure_bucket()
    storage.put_file("renders/x.mp4", video, "video/mp4")
    listed = _raw_client(s3_server).list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["team/a/renders/x.mp4"]
    assert storage.exists("renders/x.mp4")


def test_delete_prefix_removes_a_folder_only(storage: S3Storage, video: Path) -> None:
    for key in ["seg/abc/0.ts", "seg/abc/1.ts", "seg/abc/deep/2.ts", "seg/abcd/0.ts", "seg/abc"]:
        storage.put_file(key, video, "video/mp2t")
    storage.delete_prefix("seg/abc/")
    assert not storage.exists("seg/abc/0.ts")
    assert not storage.exists("seg/abc/deep/2.ts")
    assert storage.exists("seg/abcd/0.ts")
    assert storage.exists("seg/abc")
    storage.delete_prefix("seg/nothing-here")


@pytest.mark.parametrize("key", ["../x", "a/../../b", "/abs", "a\\b", "a\x00b", "", "a//b"])
def test_invalid_keys_are_refused_before_any_request(storage: S3Storage, key: str) -> None:
    with pytest.raises(InvalidKey):
        storage.exists(key)
    with pytest.raises(InvalidKey):
        storage.signed_url(key, LinkOptions(expires_in_s=60, filename="a.mp4"))


def test_presigned_url_downloads_the_bytes_as_an_attachment(
    storage: S3Storage, video: Path
) -> None:
    storage.put_file("renders/r2/output.mp4", video, "application/octet-stream")
    before = time.time()
    signed = storage.signed_url(
        "renders/r2/output.mp4", LinkOptions(expires_in_s=600, filename="Café: «hello» world.mp4")
    )
    assert abs(signed.expires_at.timestamp() - (before + 600)) < 5
    response = httpx.get(signed.url)
    assert response.status_code == 200
    assert response.content == video.read_bytes()
    assert response.headers["content-type"] == "video/mp4"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert "filename*=UTF-8''Caf%C3%A9%3A%20%C2%ABhello%C2%BB%20world.mp4" in disposition
    assert 'filename="Cafe: _hello_ world.mp4"' in disposition


def test_presigned_url_honours_range(storage: S3Storage, video: Path) -> None:
    storage.put_file("renders/r3/output.mp4", video, "video/mp4")
    signed = storage.signed_url(
        "renders/r3/output.mp4", LinkOptions(expires_in_s=60, filename="v.mp4")
    )
    response = httpx.get(signed.url, headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert response.content == video.read_bytes()[:100]
    assert response.headers["content-range"] == "bytes 0-99/1000"


def test_presigned_url_signs_its_lifetime_and_download_headers(storage: S3Storage) -> None:
    # moto (5.x) does not check query-string signatures, so tampering cannot be shown to fail
    # here; what S3 checks is whatever the URL signs, so check that the right things are signed.
    url = storage.signed_url(
        "renders/r4/output.mp4", LinkOptions(expires_in_s=60, filename="v.mp4")
    ).url
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-SignedHeaders"] == ["host"]
    assert query["response-content-type"] == ["video/mp4"]
    assert query["response-content-disposition"][0].startswith('attachment; filename="v.mp4"')
    assert len(query["X-Amz-Signature"][0]) == 64


def test_presigned_url_lifetime_is_bounded(storage: S3Storage) -> None:
    with pytest.raises(ValueError):
        storage.signed_url("a.mp4", LinkOptions(expires_in_s=0, filename="a.mp4"))
    with pytest.raises(ValueError):
        storage.signed_url("a.mp4", LinkOptions(expires_in_s=8 * 24 * 3600, filename="a.mp4"))


def test_presigned_url_points_at_the_configured_endpoint(
    storage: S3Storage, s3_server: str
) -> None:
    url = storage.signed_url("renders/x.mp4", LinkOptions(expires_in_s=60, filename="x.mp4")).url
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == s3_server
    assert parts.path == f"/{storage.bucket}/renders/x.mp4"


def test_endpoint_down_fails_fast_with_storage_error(
    s3_credentials: None, video: Path, tmp_path: Path
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    storage = _open(endpoint, "s3://renders")
    started = time.monotonic()
    with pytest.raises(StorageUnreachable, match="Could not reach the S3 endpoint"):
        storage.check_writable()
    with pytest.raises(StorageError, match=endpoint):
        storage.put_file("a.mp4", video, "video/mp4")
    with pytest.raises(StorageError):
        storage.get_file("a.mp4", tmp_path / "a.mp4")
    assert time.monotonic() - started < 20


def test_missing_credentials_are_a_storage_error(
    s3_server: str, monkeypatch: pytest.MonkeyPatch, bucket: str, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    storage = _open(s3_server, f"s3://{bucket}")
    with pytest.raises(StorageError, match="credentials"):
        storage.check_writable()


def test_s3_url_without_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="bucket"):
        open_storage("s3:///prefix", secret=SECRET, public_url="http://x")


def test_presigned_url_serves_the_disposition_and_type_asked_for(
    storage: S3Storage, video: Path
) -> None:
    storage.put_file("renders/r5.webm", video, "video/webm")
    signed = storage.signed_url(
        "renders/r5.webm",
        LinkOptions(
            expires_in_s=60, filename="clip.webm", disposition="inline", content_type="video/webm"
        ),
    )
    query = parse_qs(urlsplit(signed.url).query)
    assert query["response-content-type"] == ["video/webm"]
    response = httpx.get(signed.url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/webm"
    assert response.headers["content-disposition"].startswith('inline; filename="clip.webm"')
    with pytest.raises(ValueError, match="disposition"):
        storage.signed_url(
            "renders/r5.webm", LinkOptions(expires_in_s=60, filename="a", disposition="x")
        )
