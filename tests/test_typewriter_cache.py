"""Cached run rasters (``render.runcache``) draw exactly what drawing every run afresh draws.

Each typewriter picture is laid out afresh (the spec: the shown string is centred anew and its
lines may break differently as it grows); only the rasters of runs are reused. The reference is
the same painter with ``cache_runs=False``, which has Pillow shape and rasterise every run of
every picture: tiles (position, coverage, colour) must be identical for every distinct picture.
"""

from __future__ import annotations

import numpy as np
import pytest

from renderlab.render.frames import FramePainter, PictureKey
from tests.render_helpers import props

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
TEXTS = {
    "latin-wrapping": "The quick brown fox jumps over the lazy dog, and then once more it "
    "jumps, so that the line wraps and wraps again, even at the smaller size of the two.",
    "emoji-zwj": (FAMILY + " ok \U0001f44d\U0001f3fd ") * 5,
    "arabic-rtl": "مرحبا بالعالم، هذا نص عربي طويل يلتف على عدة أسطر في الإطار",
    "cjk": "東京は日本の首都です。今日はいい天気ですね。" * 2,
    "mixed-newlines": "Hello مرحبا 世界 \U0001f600 שלום\nnew line   with spaces\n\tand a tab",
}


def _pictures(painter: FramePainter) -> list[PictureKey]:
    keys: list[PictureKey] = []
    for frame in range(painter.props.duration_in_frames):
        key = painter.picture_key(painter.state(frame))
        if not keys or keys[-1] != key:
            keys.append(key)
    return keys


def _assert_same_tiles(cached: FramePainter, reference: FramePainter) -> int:
    keys = _pictures(cached)
    for key in keys:
        got, want = cached.tile(key), reference.tile(key)
        if want is None:
            assert got is None, key
            continue
        assert got is not None, key
        assert (got.x, got.y) == (want.x, want.y), key
        np.testing.assert_array_equal(got.alpha, want.alpha, err_msg=key.shown)
        if want.colour is None:
            assert got.colour is None
        else:
            assert got.colour is not None
            np.testing.assert_array_equal(got.colour, want.colour, err_msg=key.shown)
    return len(keys)


@pytest.mark.parametrize("name", sorted(TEXTS))
@pytest.mark.parametrize(("size", "width", "height"), [(64, 1920, 1080), (37, 640, 360)])
def test_cached_typewriter_pictures_are_the_reference_pixels(
    name: str, size: int, width: int, height: int
) -> None:
    p = props(text=TEXTS[name], style="typewriter", font_size=size, duration_in_frames=150)
    cached = FramePainter(p, width, height)
    reference = FramePainter(p, width, height, cache_runs=False)
    pictures = _assert_same_tiles(cached, reference)
    assert cached.runs is not None and cached.runs.reused > 0  # the cache did serve pictures
    assert pictures > 20


def test_a_portrait_composition_matches_too() -> None:
    """A 1080x1920 composition wraps at 1000 px: more lines, the same pixels."""
    p = props(
        text=TEXTS["latin-wrapping"] + " " + TEXTS["emoji-zwj"],
        style="typewriter",
        font_size=56,
        duration_in_frames=120,
        width=1080,
        height=1920,
    )
    cached = FramePainter(p, 540, 960)
    assert _assert_same_tiles(cached, FramePainter(p, 540, 960, cache_runs=False)) > 20


def test_whole_frames_match_too_including_scale_and_an_opaque_background() -> None:
    p = props(text=TEXTS["mixed-newlines"], style="scale", background_color="#102030")
    cached = FramePainter(p, 1280, 720)
    reference = FramePainter(p, 1280, 720, cache_runs=False)
    for frame in (1, 4, 11, 20, 59):
        np.testing.assert_array_equal(cached.rgba(frame), reference.rgba(frame))


def test_each_run_is_rasterised_about_once_not_once_per_picture() -> None:
    """Work grows with the text, not with text x pictures: the completed lines are reused."""
    text = "word " * 200  # 1000 clusters of which 500 shown: many lines
    p = props(text=text[:500], style="typewriter", font_size=48, duration_in_frames=600)
    painter = FramePainter(p, 1920, 1080)
    pictures = len(_pictures(painter))
    for key in _pictures(painter):
        painter.tile(key)
    runs = painter.runs
    assert runs is not None
    lines = 12  # 500 clusters at 48 px wrap into about ten lines
    # One new raster per picture (the line being typed) plus each finished line at each of
    # the two vertical phases the centring gives it.
    assert runs.rasterised <= pictures + 2 * 2 * lines
    assert runs.reused >= 3 * pictures


def test_lines_outside_the_picture_are_not_rasterised() -> None:
    """500 emoji at 200 px make ~70 lines; the frame shows five of them."""
    p = props(text=FAMILY * 500, style="fade-in", font_size=200, duration_in_frames=30)
    cached = FramePainter(p, 1920, 1080)
    key = cached.picture_key(cached.state(29))
    tile = cached.tile(key)
    runs = cached.runs
    assert tile is not None and runs is not None
    assert runs.skipped >= 60 and runs.rasterised <= 10
    want = FramePainter(p, 1920, 1080, cache_runs=False).tile(key)
    assert want is not None and want.colour is not None and tile.colour is not None
    np.testing.assert_array_equal(tile.alpha, want.alpha)
    np.testing.assert_array_equal(tile.colour, want.colour)
