"""A real S3-compatible server for tests: moto in server mode, in a subprocess, on loopback.

The S3 backend is tested over HTTP against this server (uploads, presigned GETs fetched with
httpx), never against an in-process stub, so signing, addressing and error paths are the ones a
deployment exercises. Register it for every test module with
``pytest_plugins = ["tests.s3_server"]`` in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

S3_TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "renderlab-test",
    "AWS_SECRET_ACCESS_KEY": "renderlab-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Keep a developer's ~/.aws out of the tests.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def create_bucket(endpoint: str, bucket: str) -> None:
    """Make ``bucket`` on the test S3 server at ``endpoint`` (with the test credentials)."""
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    ).create_bucket(Bucket=bucket)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(
    process: subprocess.Popen[bytes], endpoint: str, log: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(errors="replace")
            pytest.fail(f"moto server exited with {process.returncode}:\n{output}")
        try:
            httpx.get(endpoint + "/moto-api/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"moto server did not answer at {endpoint} within {timeout_s} s")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint URL (``http://127.0.0.1:PORT``) of a moto S3 server for this session.

    Its request log goes to a file, not a pipe: an unread pipe fills up and stalls the server.
    """
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with log_path.open("wb") as log:
        for attempt in range(3):  # the port can be taken between free_port() and the bind
            port = free_port()
            endpoint = f"http://127.0.0.1:{port}"
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **S3_TEST_CREDENTIALS},
            )
            try:
                _wait_until_up(process, endpoint, log_path, timeout_s=30)
                break
            except pytest.fail.Exception:
                process.kill()
                process.wait()
                if attempt == 2:
                    raise
        try:
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def s3_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials the moto server accepts, set for boto3's default chain during one test."""
    for name, value in S3_TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
