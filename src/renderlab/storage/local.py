"""Storage in a directory on this machine: the zero-setup default.

Objects are plain files under a root directory, written atomically (temporary file in the same
directory, fsync, rename) so a reader or a crash never sees half a video. Downloads go through
the app's ``/files/...`` route with HMAC-signed URLs (see :mod:`renderlab.api.downloads`).
"""

from __future__ import annotations

import errno
import functools
import os
import re
import shutil
import tempfile
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from renderlab.storage import signing
from renderlab.storage.base import (
    InvalidKey,
    LinkOptions,
    ObjectNotFound,
    SignedURL,
    StorageError,
    validate_key,
    validate_prefix,
)
from renderlab.storage.disposition import DISPOSITIONS, safe_filename

_COPY_BUFFER = 1024 * 1024
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*", re.ASCII)  # what quote() leaves as it is


def _quoted(value: str, safe: str = "") -> str:
    """``urllib.parse.quote(value, safe)``, skipped for values it would not change (keys,
    expiries, signatures, most filenames): a render read signs two URLs."""
    plain = _UNRESERVED.fullmatch(value.replace("/", "") if safe == "/" else value)
    return value if plain else quote(value, safe=safe)


def _io_error(action: str, path: Path, exc: OSError) -> StorageError:
    """Turn an OSError into a sentence that says what to fix."""
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        hint = "free some space or point RENDERLAB_STORAGE_URL at a larger disk"
    elif exc.errno in _DENIED:
        hint = "make it writable by this process or point RENDERLAB_STORAGE_URL elsewhere"
    else:
        hint = "check that RENDERLAB_STORAGE_URL names a writable directory"
    return StorageError(f"Could not {action} {path} in local storage ({reason}); {hint}.")


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable; some filesystems refuse to open directories, which is harmless."""
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _copy_atomically(source: Path, target: Path) -> int:
    """Copy ``source`` to ``target`` via a temporary sibling and a rename; return the size.

    The temporary name starts with a dot, which no valid key segment does, so it can never
    collide with or be served as an object. It is removed if anything goes wrong.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, _COPY_BUFFER)
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        os.replace(tmp_name, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)
    return size


_MEDIA_TYPE = re.compile(r"[a-z]+/[a-z0-9][a-z0-9.+-]*", re.ASCII)


def check_served_as(disposition: str, content_type: str | None) -> None:
    """Refuse a disposition or Content-Type a download could not be served with (ours are
    constants; this keeps a programming error out of a response header)."""
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition must be one of {', '.join(DISPOSITIONS)}")
    if content_type is not None and not _MEDIA_TYPE.fullmatch(content_type):
        raise ValueError(f"{content_type!r} is not a media type")


@dataclass(frozen=True, slots=True)
class _LinkParts:
    path: str  # /files/{key}, quoted
    query: str  # &filename=...[&disposition=...][&type=...], quoted
    message: tuple[bytes, bytes]  # the signed message around the expiry


@functools.lru_cache(maxsize=4096)
def _link_parts(key: str, filename: str, disposition: str, content_type: str | None) -> _LinkParts:
    """What a link to ``key`` is made of but its expiry and signature, checked and quoted once
    per object and name: every read of a complete render signs two links, and building these
    cost two thirds of the 13 us a link took (an invalid key or name raises, and is not kept)."""
    validate_key(key)
    check_served_as(disposition, content_type)
    name = safe_filename(filename)
    query = f"&filename={_quoted(name)}"
    if disposition != signing.DEFAULT_DISPOSITION:
        query += f"&disposition={_quoted(disposition)}"
    if content_type is not None:
        query += f"&type={_quoted(content_type)}"
    message = signing.message_parts(key, name, disposition, content_type)
    return _LinkParts(f"/files/{_quoted(key, '/')}", query, message)


class LocalStorage:
    """Objects as files under ``root``; signed URLs point at ``{public_url}/files/{key}``."""

    bucket_name = "local"

    def __init__(self, root: str | Path, *, secret: bytes, public_url: str) -> None:
        root = Path(root)
        if not root.is_absolute():
            raise ValueError(f"local storage root must be an absolute path, got {str(root)!r}")
        if not secret:
            raise ValueError("local storage needs a non-empty signing secret")
        self.root = root.resolve()
        self.public_url = public_url.rstrip("/")
        self._secret = secret

    def __repr__(self) -> str:
        return f"LocalStorage(root={str(self.root)!r}, public_url={self.public_url!r})"

    def path_for(self, key: str) -> Path:
        """The file for ``key``, refused unless it resolves (symlinks included) under the root."""
        validate_key(key)
        path = (self.root / key).resolve()
        if path == self.root or not path.is_relative_to(self.root):
            raise InvalidKey(f"storage key {key!r} leads outside the storage root")
        return path

    def put_file(self, key: str, path: str | Path, content_type: str) -> int:
        """Store a copy of ``path``. ``content_type`` is not kept: a signed URL carries the
        type its download is served as, and segments are only ever read back by workers."""
        target = self.path_for(key)
        source = Path(path)
        if not source.is_file():
            raise StorageError(f"Cannot store {source}: it is not a readable file.")
        try:
            return _copy_atomically(source, target)
        except OSError as exc:
            raise _io_error("write", target, exc) from exc

    def get_file(self, key: str, dest_path: str | Path) -> Path:
        """Copy the object to ``dest_path`` (atomically there too), creating its folder."""
        source = self.path_for(key)
        dest = Path(dest_path)
        if not source.is_file():
            raise ObjectNotFound(f"No object is stored under {key!r} in {self.root}.")
        try:
            _copy_atomically(source, dest)
        except FileNotFoundError as exc:  # deleted between the check and the copy
            if not source.is_file():
                raise ObjectNotFound(f"No object is stored under {key!r} in {self.root}.") from exc
            raise _io_error("copy to", dest, exc) from exc
        except OSError as exc:
            raise _io_error("copy to", dest, exc) from exc
        return dest

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the file. Emptied folders are left behind: pruning them would race with a
        concurrent ``put_file`` creating a sibling in the same folder."""
        path = self.path_for(key)
        try:
            path.unlink(missing_ok=True)
        except IsADirectoryError:
            return  # a folder of other keys, not an object
        except OSError as exc:
            raise _io_error("delete", path, exc) from exc

    def delete_prefix(self, prefix: str) -> None:
        folder = self.path_for(validate_prefix(prefix))
        try:
            shutil.rmtree(folder)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise _io_error("delete", folder, exc) from exc

    def signed_url(self, key: str, link: LinkOptions) -> SignedURL:
        """``{public_url}/files/{key}?expires=&filename=[&disposition=][&type=]&sig=``, valid
        for ``link.expires_in_s``; the signature covers every parameter, so none can be changed."""
        if link.expires_in_s <= 0:
            raise ValueError("expires_in_s must be positive")
        parts = _link_parts(key, link.filename, link.disposition, link.content_type)
        expires = int(time.time() if link.now is None else link.now) + int(link.expires_in_s)
        sig = signing.sign_parts(parts.message, expires, self._secret)
        return SignedURL(
            url=f"{self.public_url}{parts.path}?expires={expires}{parts.query}&sig={sig}",
            expires_at=datetime.fromtimestamp(expires, tz=UTC),
        )

    def verify(
        self,
        key: str,
        expires: int,
        filename: str,
        sig: str,
        disposition: str = signing.DEFAULT_DISPOSITION,
        content_type: str | None = None,
    ) -> bool:
        """Whether the signature is ours (expiry is checked separately)."""
        link = signing.LinkFields(key, expires, filename, disposition, content_type)
        return signing.verify(link, sig, self._secret)

    def check_writable(self) -> None:
        """Create, fsync and remove a probe file in the root (creating the root if needed)."""
        probe = self.root / f".probe-{uuid.uuid4().hex}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with probe.open("xb") as handle:
                handle.write(b"ok")
                handle.flush()
                os.fsync(handle.fileno())
            probe.unlink()
        except OSError as exc:
            raise _io_error("write", self.root, exc) from exc
