"""The flat slices kept between processes (render/diskcache.py): the same bytes out, made once.

Each test points RENDERLAB_CACHE_DIR at a directory of its own and empties the band's
in-memory cache, so what a render finds is only what is on disk, as for a fresh process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from renderlab.render import band, diskcache, render_chunk
from tests.render_helpers import decode_luma, props

W, H = 640, 360
P = props(style="fade-in", text="Kept", background_color="#204060", duration_in_frames=30)


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many times the flat slices were encoded with x264 (not read from disk)."""
    calls: list[int] = []
    encode = band._encode_flat

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return encode(*args, **kwargs)

    monkeypatch.setattr(band, "_encode_flat", counted)
    band._flat_slices.cache_clear()
    yield calls
    band._flat_slices.cache_clear()


def _render(path: Path) -> bytes:
    band._flat_slices.cache_clear()  # a fresh process's memory
    render_chunk(P, 0, P.duration_in_frames, path, width=W, height=H)
    return path.read_bytes()


def _entries(root: Path) -> list[Path]:
    return sorted((root / "flat-slices").glob("*"))


def test_a_second_render_reads_the_flat_slices_and_writes_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made: list[int]
) -> None:
    monkeypatch.setenv("RENDERLAB_CACHE_DIR", str(tmp_path / "cache"))
    first = _render(tmp_path / "first.mp4")
    assert len(made) == 1
    (entry,) = _entries(tmp_path / "cache")
    second = _render(tmp_path / "second.mp4")
    assert len(made) == 1  # read back, not encoded again
    assert second == first
    assert len(decode_luma(tmp_path / "second.mp4")) == P.duration_in_frames
    monkeypatch.setenv("RENDERLAB_CACHE_DIR", diskcache.OFF)
    assert _render(tmp_path / "uncached.mp4") == first  # the cache changes nothing in the file
    assert _entries(tmp_path / "cache") == [entry]


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "empty"])
def test_a_damaged_entry_is_made_again_never_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made: list[int], damage: str
) -> None:
    monkeypatch.setenv("RENDERLAB_CACHE_DIR", str(tmp_path / "cache"))
    first = _render(tmp_path / "first.mp4")
    (entry,) = _entries(tmp_path / "cache")
    intact = entry.read_bytes()
    damaged = {
        "flip a byte": intact[:500] + bytes([intact[500] ^ 0x40]) + intact[501:],
        "truncate": intact[: len(intact) // 2],
        "empty": b"",
    }[damage]
    entry.write_bytes(damaged)
    assert _render(tmp_path / "again.mp4") == first
    assert len(made) == 2
    assert entry.read_bytes() == intact  # written whole again
    assert _render(tmp_path / "third.mp4") == first and len(made) == 2


def test_off_or_unwritable_keeps_nothing_and_renders_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made: list[int]
) -> None:
    monkeypatch.setenv("RENDERLAB_CACHE_DIR", diskcache.OFF)
    first = _render(tmp_path / "off.mp4")
    assert diskcache.cache_dir() is None and not list(tmp_path.glob("**/flat-slices"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("RENDERLAB_CACHE_DIR", str(blocker / "cache"))
    assert _render(tmp_path / "unwritable.mp4") == first
    assert len(made) == 2


def test_an_entry_answers_only_its_own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under another key's name (renamed, or a key that hashes alike), an entry is missing."""
    monkeypatch.setenv("RENDERLAB_CACHE_DIR", str(tmp_path))
    diskcache.store("kind", b"key one", b"data one")
    assert diskcache.load("kind", b"key one") == b"data one"
    assert diskcache.load("kind", b"key two") is None
    (one,) = (tmp_path / "kind").glob("*")
    diskcache.store("kind", b"key two", b"data two")
    two = next(p for p in (tmp_path / "kind").glob("*") if p != one)
    two.write_bytes(one.read_bytes())
    assert diskcache.load("kind", b"key two") is None
    assert not list((tmp_path / "kind").glob(".new-*"))  # no temporary file left


def test_the_default_directory_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RENDERLAB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert diskcache.cache_dir() == tmp_path / "xdg" / "renderlab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert diskcache.cache_dir() == tmp_path / "home" / ".cache" / "renderlab"
