"""Storage in an S3 bucket (AWS, MinIO, Ceph, R2... via ``RENDERLAB_S3_ENDPOINT_URL``).

Every process that renders or serves shares the bucket, so this is the backend for Celery
deployments. Downloads use S3's own presigned GET, with the download name and type forced by
``response-content-disposition`` / ``response-content-type``, so video bytes never pass through
the app. Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``... or a role).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as S3ConnectionError

from renderlab.storage.base import (
    LinkOptions,
    ObjectNotFound,
    SignedURL,
    StorageError,
    StorageUnreachable,
    validate_key,
    validate_prefix,
)
from renderlab.storage.disposition import content_disposition

MAX_PRESIGN_S = 7 * 24 * 3600
"""SigV4 presigned URLs cannot outlive a week."""

_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}
_PROBE_FOLDER = "_renderlab/probe"


_client_lock = threading.Lock()
_shared_loader: Any = None


def _new_client(**kwargs: Any) -> Any:
    """A client from a fresh session (so credentials are read now) sharing one model loader.

    Loading the S3 service model is most of the ~150 ms a new client costs; sessions are not
    thread-safe, hence the lock. Clients themselves are thread-safe and shared by callers.
    """
    global _shared_loader
    with _client_lock:
        core = botocore.session.get_session()
        if _shared_loader is None:
            _shared_loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _shared_loader)
        return boto3.session.Session(botocore_session=core).client("s3", **kwargs)


def client_config(max_attempts: int = 3) -> Config:
    """Short connect timeout and few retries, so a store that is down fails in seconds rather
    than hanging a worker or the health check; a generous read timeout for large objects."""
    return Config(
        connect_timeout=2,
        read_timeout=30,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        signature_version="s3v4",
    )


class S3Storage:
    """Objects under ``s3://bucket/prefix/``; presigned GETs for downloads."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        config: Config | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 storage URL needs a bucket: s3://BUCKET[/PREFIX]")
        self.bucket = bucket
        self.prefix = validate_prefix(prefix) + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        config = config or client_config()
        if endpoint_url:
            # S3-compatible stores on a host name or IP rarely do virtual-hosted buckets.
            config = config.merge(Config(s3={"addressing_style": "path"}))
        self.client: Any = _new_client(endpoint_url=endpoint_url, region_name=region, config=config)

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"S3Storage(s3://{self.bucket}/{self.prefix}{where})"

    @property
    def bucket_name(self) -> str:
        return self.bucket

    def _key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    @contextmanager
    def _errors(self, action: str, key: str | None = None) -> Iterator[None]:
        """Translate boto3/botocore failures into a :class:`StorageError` a person can act on."""
        where = f"s3://{self.bucket}/{self.prefix}{key or ''}"
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if key is not None and code in _NOT_FOUND_CODES:
                raise ObjectNotFound(f"No object is stored at {where}.") from exc
            if code == "NoSuchBucket":
                message = (
                    f"The bucket {self.bucket!r} does not exist; create it or fix "
                    "RENDERLAB_STORAGE_URL."
                )
            elif code in {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                message = (
                    f"S3 refused to {action} {where} ({code}); check the credentials and the "
                    "bucket policy."
                )
            else:
                message = f"S3 could not {action} {where}: {error.get('Message') or code or exc}."
            raise StorageError(message) from exc
        except NoCredentialsError as exc:
            raise StorageError(
                "No S3 credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or another boto3 credential source)."
            ) from exc
        except S3ConnectionError as exc:  # refused, unresolvable host, connect timeout
            raise StorageUnreachable(
                f"Could not reach the S3 endpoint {self.endpoint_url or '(AWS)'} to {action} "
                f"{where}; check RENDERLAB_S3_ENDPOINT_URL and that the store is running."
            ) from exc
        except (BotoCoreError, Boto3Error) as exc:
            raise StorageError(
                f"S3 could not {action} {where} ({exc}); check RENDERLAB_S3_ENDPOINT_URL, the "
                "network and the credentials."
            ) from exc

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists; called once at startup."""
        with self._errors("check bucket"):
            try:
                self.client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) not in {"404", "NoSuchBucket"}:
                    raise
            region = self.client.meta.region_name
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if region and region not in {"us-east-1", "aws-global"}:
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                self.client.create_bucket(**kwargs)
            except ClientError as exc:  # another process won the race
                if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise

    def put_file(self, key: str, path: str | Path, content_type: str) -> int:
        """Upload (multipart for large files, via s3transfer); S3 makes it atomic."""
        full = self._key(key)
        source = Path(path)
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise StorageError(f"Cannot store {source}: {exc.strerror or exc}.") from exc
        with self._errors("write", key):
            self.client.upload_file(
                str(source), self.bucket, full, ExtraArgs={"ContentType": content_type}
            )
        return size

    def get_file(self, key: str, dest_path: str | Path) -> Path:
        """Download to ``dest_path`` (s3transfer writes a temporary file and renames it)."""
        full = self._key(key)
        dest = Path(dest_path)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"Cannot create {dest.parent}: {exc.strerror or exc}.") from exc
        with self._errors("read", key):
            self.client.download_file(self.bucket, full, str(dest))
        return dest

    def exists(self, key: str) -> bool:
        full = self._key(key)
        try:
            with self._errors("check", key):
                self.client.head_object(Bucket=self.bucket, Key=full)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        full = self._key(key)
        with self._errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=full)

    def delete_prefix(self, prefix: str) -> None:
        folder = self.prefix + validate_prefix(prefix) + "/"
        with self._errors("delete", folder[len(self.prefix) :]):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=folder
            )
            for page in pages:
                objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if not objects:
                    continue
                result = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                )
                if result.get("Errors"):
                    first = result["Errors"][0]
                    raise StorageError(
                        f"S3 could not delete {len(result['Errors'])} objects under "
                        f"s3://{self.bucket}/{folder}, e.g. {first.get('Key')}: "
                        f"{first.get('Message') or first.get('Code')}."
                    )

    def signed_url(self, key: str, link: LinkOptions) -> SignedURL:
        """A presigned GET that names the download and forces its disposition and type
        (``response-content-disposition`` / ``response-content-type``; ``video/mp4`` unless
        ``content_type`` is given), which S3 signs with the rest.

        S3 stamps the signature with the real clock, so ``link.now`` only shifts the reported
        ``expires_at``; pass it to keep the record consistent with an injected clock.
        """
        full = self._key(key)
        expires_in_s = link.expires_in_s
        if not 0 < expires_in_s <= MAX_PRESIGN_S:
            raise ValueError(f"expires_in_s must be between 1 and {MAX_PRESIGN_S} for S3")
        issued = time.time() if link.now is None else link.now
        with self._errors("sign a URL for", key):
            url = self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": full,
                    "ResponseContentDisposition": content_disposition(
                        link.filename, link.disposition
                    ),
                    "ResponseContentType": link.content_type or "video/mp4",
                },
                ExpiresIn=int(expires_in_s),
            )
        return SignedURL(
            url=url, expires_at=datetime.fromtimestamp(int(issued) + int(expires_in_s), tz=UTC)
        )

    def check_writable(self) -> None:
        """Write and delete a tiny probe object."""
        probe = f"{_PROBE_FOLDER}/{uuid.uuid4().hex}"
        with self._errors("write", probe):
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + probe, Body=b"ok")
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + probe)
