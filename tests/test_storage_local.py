"""The local backend on a real filesystem: round trips, atomic writes, refusals, signing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renderlab.storage import (
    InvalidKey,
    LinkOptions,
    LocalStorage,
    ObjectNotFound,
    Storage,
    StorageError,
    open_storage,
    signing,
    validate_key,
)
from renderlab.storage.disposition import content_disposition, safe_filename

SECRET = b"test-secret-0123456789abcdef0123"
PUBLIC = "http://127.0.0.1:8000"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def storage(root: Path) -> LocalStorage:
    return LocalStorage(root, secret=SECRET, public_url=PUBLIC + "/")


def _file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".")]


# --- opening -------------------------------------------------------------------------------


def test_open_storage_file_url(tmp_path: Path) -> None:
    storage = open_storage((tmp_path / "with space").as_uri(), secret=SECRET, public_url=PUBLIC)
    assert isinstance(storage, LocalStorage)
    assert isinstance(storage, Storage)
    assert storage.bucket_name == "local"
    assert storage.root == (tmp_path / "with space").resolve()


@pytest.mark.parametrize(
    "url", ["file://server/share", "file:relative/dir", "ftp://x/y", "/plain/path", "file:///x?q=1"]
)
def test_open_storage_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"RENDERLAB_STORAGE_URL|absolute"):
        open_storage(url, secret=SECRET, public_url=PUBLIC)


def test_an_empty_secret_is_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="secret"):
        LocalStorage(root, secret=b"", public_url=PUBLIC)


# --- objects ---------------------------------------------------------------------------------


def test_put_get_exists_delete_round_trip(storage: LocalStorage, tmp_path: Path) -> None:
    source = _file(tmp_path / "in.mp4", os.urandom(5000))
    key = "renders/r1/output.mp4"
    assert not storage.exists(key)
    assert storage.put_file(key, source, "video/mp4") == 5000
    assert storage.exists(key)
    assert (storage.root / key).read_bytes() == source.read_bytes()
    out = storage.get_file(key, tmp_path / "deep" / "er" / "out.mp4")
    assert out == tmp_path / "deep" / "er" / "out.mp4"
    assert out.read_bytes() == source.read_bytes()
    storage.delete(key)
    assert not storage.exists(key)
    storage.delete(key)
    assert _leftovers(storage.root) == []


def test_put_replaces_an_existing_object(storage: LocalStorage, tmp_path: Path) -> None:
    storage.put_file("a.mp4", _file(tmp_path / "1", b"first"), "video/mp4")
    assert storage.put_file("a.mp4", _file(tmp_path / "2", b"second!"), "video/mp4") == 7
    assert storage.get_file("a.mp4", tmp_path / "o").read_bytes() == b"second!"


def test_get_of_a_missing_key(storage: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound, match=r"no-such\.mp4"):
        storage.get_file("no-such.mp4", tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_put_of_a_missing_source_is_a_storage_error(storage: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="not a readable file"):
        storage.put_file("a.mp4", tmp_path / "missing.mp4", "video/mp4")


def test_delete_prefix_removes_a_folder_only(storage: LocalStorage, tmp_path: Path) -> None:
    src = _file(tmp_path / "s", b"x")
    for key in ["seg/abc/0.ts", "seg/abc/deep/1.ts", "seg/abcd/0.ts", "seg/abc.ts"]:
        storage.put_file(key, src, "video/mp2t")
    storage.delete_prefix("seg/abc/")
    assert not storage.exists("seg/abc/0.ts")
    assert not storage.exists("seg/abc/deep/1.ts")
    assert not (storage.root / "seg" / "abc").exists()
    assert storage.exists("seg/abcd/0.ts")
    assert storage.exists("seg/abc.ts")
    storage.delete_prefix("seg/nothing")
    storage.delete_prefix("seg/abc.ts")  # a file is not a folder: left alone
    assert storage.exists("seg/abc.ts")
    with pytest.raises(InvalidKey):
        storage.delete_prefix("/")
    with pytest.raises(InvalidKey):
        storage.delete_prefix("")


# --- atomicity ------------------------------------------------------------------------------


def test_readers_never_see_a_partial_object(storage: LocalStorage, tmp_path: Path) -> None:
    versions = [bytes([i]) * 300_000 for i in (1, 2)]
    sources = [_file(tmp_path / f"v{i}", data) for i, data in enumerate(versions)]
    storage.put_file("live.mp4", sources[0], "video/mp4")
    target = storage.root / "live.mp4"
    torn: list[int] = []
    reads = 0
    done = threading.Event()

    def read() -> None:
        nonlocal reads
        while not done.is_set():
            data = target.read_bytes()
            reads += 1
            if data not in versions:
                torn.append(len(data))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(40):
            storage.put_file("live.mp4", sources[i % 2], "video/mp4")
    finally:
        done.set()
        reader.join()
    assert reads > 0
    assert torn == [], "readers saw partly written objects"
    assert _leftovers(storage.root) == []


_FULL_DISK_SCRIPT = """
import json, resource, signal, sys
from renderlab.storage import LocalStorage, StorageError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit, write() fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
storage = LocalStorage(sys.argv[1], secret=b"s", public_url="http://x")
try:
    storage.put_file("renders/out.mp4", sys.argv[2], "video/mp4")
except StorageError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps({"error": None}))
"""


def test_a_full_disk_keeps_the_old_object_and_no_debris(
    storage: LocalStorage, tmp_path: Path
) -> None:
    """A per-process file size limit makes the kernel refuse the write mid-copy, as a full
    disk would; the subprocess keeps the limit away from the test runner."""
    storage.put_file("renders/out.mp4", _file(tmp_path / "old", b"old video"), "video/mp4")
    big = _file(tmp_path / "big", os.urandom(64 * 1024))
    result = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_SCRIPT, str(storage.root), str(big)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    error = json.loads(result.stdout)["error"]
    assert error is not None
    assert "File too large" in error and "free some space" in error
    assert (storage.root / "renders" / "out.mp4").read_bytes() == b"old video"
    assert _leftovers(storage.root) == []


# --- unwritable storage -----------------------------------------------------------------------


def test_a_root_that_cannot_be_a_directory_is_a_storage_error(tmp_path: Path) -> None:
    """The tests run as root, which ignores permission bits; a root below a regular file is
    refused by the kernel for everyone."""
    blocker = _file(tmp_path / "not-a-dir", b"")
    storage = LocalStorage(blocker / "storage", secret=SECRET, public_url=PUBLIC)
    source = _file(tmp_path / "in.mp4", b"video")
    with pytest.raises(StorageError, match=r"not-a-dir/storage.*RENDERLAB_STORAGE_URL"):
        storage.check_writable()
    with pytest.raises(StorageError, match="Not a directory"):
        storage.put_file("a.mp4", source, "video/mp4")


def test_a_root_in_a_pseudo_filesystem_is_a_storage_error() -> None:
    storage = LocalStorage("/proc/renderlab-storage", secret=SECRET, public_url=PUBLIC)
    with pytest.raises(StorageError, match="/proc/renderlab-storage"):
        storage.check_writable()


def test_check_writable_creates_the_root_and_leaves_nothing(storage: LocalStorage) -> None:
    storage.check_writable()
    assert storage.root.is_dir()
    assert list(storage.root.iterdir()) == []


# --- keys -----------------------------------------------------------------------------------

BAD_KEYS = [
    "../x",
    "a/../../b",
    "a/..",
    "..",
    ".",
    "./a",
    "/etc/passwd",
    "a\\b",
    "..\\x",
    "a\x00b",
    "",
    "a//b",
    "a/",
    ".hidden",
    "a/.tmp-x.part",
    "%2e%2e/x",
    "caf\u00e9.mp4",
    "a b",
    "a\nb",
    "x" * 513,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_refused_everywhere(
    storage: LocalStorage, key: str, tmp_path: Path
) -> None:
    source = _file(tmp_path / "in", b"x")
    for call in (
        lambda: storage.put_file(key, source, "video/mp4"),
        lambda: storage.get_file(key, tmp_path / "out"),
        lambda: storage.exists(key),
        lambda: storage.delete(key),
        lambda: storage.signed_url(key, LinkOptions(expires_in_s=60, filename="a.mp4")),
    ):
        with pytest.raises(InvalidKey):
            call()
    assert not storage.root.exists() or list(storage.root.rglob("*")) == []


def test_a_symlink_out_of_the_root_is_refused(storage: LocalStorage, tmp_path: Path) -> None:
    outside = _file(tmp_path / "outside" / "secret.txt", b"secret")
    storage.root.mkdir(parents=True)
    (storage.root / "link").symlink_to(outside.parent, target_is_directory=True)
    with pytest.raises(InvalidKey, match="outside"):
        storage.get_file("link/secret.txt", tmp_path / "stolen")
    assert not (tmp_path / "stolen").exists()


_SEGMENT = st.text("ab.-_/Z09", min_size=1, max_size=40)


@given(key=_SEGMENT)
def test_every_accepted_key_stays_under_the_root(key: str) -> None:
    storage = LocalStorage("/srv/renderlab/storage", secret=SECRET, public_url=PUBLIC)
    try:
        validate_key(key)
    except InvalidKey:
        return
    assert storage.path_for(key).is_relative_to(storage.root)
    assert storage.path_for(key) != storage.root


# --- signed URLs ---------------------------------------------------------------------------


def test_signed_url_shape(storage: LocalStorage) -> None:
    signed = storage.signed_url(
        "renders/r1/output.mp4",
        LinkOptions(expires_in_s=3600, filename="Café & co.mp4", now=1_700_000_000.7),
    )
    parts = urlsplit(signed.url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC
    assert parts.path == "/files/renders/r1/output.mp4"
    assert "Caf%C3%A9%20%26%20co.mp4" in parts.query
    query = parse_qs(parts.query)
    assert query["expires"] == ["1700003600"]
    assert query["filename"] == ["Café & co.mp4"]
    assert signed.expires_at == datetime(2023, 11, 14, 23, 13, 20, tzinfo=UTC)
    assert storage.verify("renders/r1/output.mp4", 1700003600, "Café & co.mp4", query["sig"][0])


def test_signed_url_cleans_the_filename(storage: LocalStorage) -> None:
    url = storage.signed_url(
        "a.mp4", LinkOptions(expires_in_s=60, filename='../"evil"\r\n.mp4')
    ).url
    assert parse_qs(urlsplit(url).query)["filename"] == ["__evil_.mp4"]


def test_signed_url_needs_a_positive_lifetime(storage: LocalStorage) -> None:
    with pytest.raises(ValueError):
        storage.signed_url("a.mp4", LinkOptions(expires_in_s=0, filename="a.mp4"))


def test_signature_covers_every_field() -> None:
    link = signing.LinkFields("renders/a.mp4", 2_000_000_000, "a.mp4")
    sig = signing.sign(link, SECRET)
    assert signing.verify(link, sig, SECRET)
    assert not signing.verify(link._replace(key="renders/b.mp4"), sig, SECRET)
    assert not signing.verify(link._replace(expires=2_000_000_001), sig, SECRET)
    assert not signing.verify(link._replace(filename="b.mp4"), sig, SECRET)
    assert not signing.verify(link, sig, b"other secret")
    assert not signing.verify(link, sig[:-1] + "A", SECRET)
    assert not signing.verify(link, "\udcff\u00e9", SECRET)
    # Field boundaries cannot be shifted: the message is not a plain concatenation.
    assert sig != signing.sign(signing.LinkFields("renders/a.mp42", 2_000_000_000, ".mp4"), SECRET)
    assert "=" not in sig and "+" not in sig and "/" not in sig


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("1700000000", 1700000000), ("0", None), ("0123", None), ("-5", None), ("1e9", None),
     (" 12", None), ("", None), (None, None), ("\u0661\u0662", None), ("9" * 13, None)],
)  # fmt: skip
def test_expiry_has_one_spelling(raw: str | None, parsed: int | None) -> None:
    assert signing.parse_expires(raw) == parsed


def test_expiry_is_exclusive() -> None:
    assert not signing.is_expired(100, now=99.999)
    assert signing.is_expired(100, now=100)


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("video.mp4", "attachment; filename=\"video.mp4\"; filename*=UTF-8''video.mp4"),
        (
            "Grüße «über» 東京.mp4",
            'attachment; filename="Gru_e _uber_ __.mp4"; '
            "filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%C2%AB%C3%BCber%C2%BB%20%E6%9D%B1%E4%BA%AC.mp4",
        ),
        ("", "attachment; filename=\"video.mp4\"; filename*=UTF-8''video.mp4"),
        (
            'say "hi"\\.mp4',
            "attachment; filename=\"say _hi__.mp4\"; filename*=UTF-8''say%20_hi__.mp4",
        ),
    ],
)
def test_content_disposition(name: str, header: str) -> None:
    assert content_disposition(name) == header
    assert content_disposition(name).isascii()


def test_safe_filename_is_idempotent_and_bounded() -> None:
    long = "x" * 400 + ".mp4"
    assert len(safe_filename(long)) == 150 and safe_filename(long).endswith(".mp4")
    for name in ["a/b\\c.mp4", " .hidden. ", "\x00\x1f\u200bok.mp4", long, "東京.mp4"]:
        assert safe_filename(safe_filename(name)) == safe_filename(name)


@pytest.mark.parametrize(
    ("name", "extension", "expected"),
    [
        ("My clip", ".webm", "My clip.webm"),
        ("My clip.mp4", ".webm", "My clip.webm"),
        ("CLIP.MOV", ".mov", "CLIP.mov"),
        ("report v1.2", ".gif", "report v1.2.gif"),
        ("setup.exe", ".mp4", "setup.exe.mp4"),
        ('../"a"\r\n.png', ".mov", "__a_.mov"),
        ("", ".webm", "video.webm"),
        ("x" * 300 + ".mp4", ".webm", "x" * 145 + ".webm"),
    ],
)
def test_with_extension_forces_the_codecs_extension(
    name: str, extension: str, expected: str
) -> None:
    from renderlab.storage.disposition import with_extension

    assert with_extension(name, extension) == expected


_PRINTABLE = st.from_regex(r"[ -~]{0,40}", fullmatch=True)


@given(
    st.one_of(st.text(), _PRINTABLE),
    st.integers(1, 10**12),
    st.one_of(st.text(), _PRINTABLE),
    st.sampled_from(["attachment", "inline"]),
    st.none() | st.text(),
)
def test_signed_messages_and_quoting_are_what_the_slow_paths_write(
    key: str, expires: int, filename: str, disposition: str, content_type: str | None
) -> None:
    """The fast paths of signing (plain strings) sign the very bytes json.dumps wrote, so every
    link issued before them still verifies; URL parts are quoted exactly as quote() does."""
    import base64
    import hashlib
    import hmac
    from urllib.parse import quote

    from renderlab.storage import signing
    from renderlab.storage.local import _quoted

    link = signing.LinkFields(key, expires, filename, disposition, content_type)
    fields: list[object] = [key, expires, filename]
    if disposition != "attachment" or content_type is not None:
        fields += [disposition, content_type]
    expected = signing._CONTEXT + json.dumps(fields, ensure_ascii=True).encode("ascii")
    head, tail = signing.message_parts(key, filename, disposition, content_type)
    assert head + str(expires).encode("ascii") + tail == expected
    digest = hmac.digest(b"secret", expected, hashlib.sha256)
    assert signing.sign(link, b"secret") == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert _quoted(key) == quote(key, safe="")
    assert _quoted(filename, "/") == quote(filename, safe="/")


@given(st.one_of(st.text(), _PRINTABLE))
def test_the_ascii_shortcut_of_safe_filename_cleans_as_the_general_path(name: str) -> None:
    from renderlab.storage import disposition

    assert safe_filename(name) == disposition._cleaned(name)
