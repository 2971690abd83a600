"""Stills and layout: what a frame shows, where, in which font, and what is refused."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from renderlab.caps import CapError
from renderlab.limits import Limits
from renderlab.render import fonts, render_still, validate_size
from renderlab.render.fonts import covers, fallback_chain, resolve_family
from renderlab.render.layout import FRAME_WIDTH, PADDING_X, layout
from renderlab.render.settings import validate_duration
from tests.render_helpers import alpha, props

MAX_LINE = FRAME_WIDTH - 2 * PADDING_X


def _ink_columns(a: np.ndarray) -> np.ndarray:
    return np.nonzero(a.max(axis=0))[0]


def _ink_rows(a: np.ndarray) -> np.ndarray:
    return np.nonzero(a.max(axis=1))[0]


def test_transparent_still_is_rgba_and_opaque_still_is_rgb() -> None:
    png = render_still(props(), 45, 640, 360)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (640, 360)
    a = alpha(png)
    assert a.max() == 255 and a[0, 0] == 0
    opaque = Image.open(io.BytesIO(render_still(props(background_color="#336699"), 45, 640, 360)))
    assert opaque.mode == "RGB"
    assert opaque.getpixel((0, 0)) == (0x33, 0x66, 0x99)


def test_fade_in_frames() -> None:
    p = props(color="#FF0000")
    assert alpha(render_still(p, 0, 640, 360)).max() == 0
    half = np.asarray(Image.open(io.BytesIO(render_still(p, 15, 640, 360))))
    full = np.asarray(Image.open(io.BytesIO(render_still(p, 30, 640, 360))))
    assert full[..., 3].max() == 255
    assert half[..., 3].max() == 128  # round(255 * 0.5)
    inked = full[..., 3] > 0
    assert (full[inked][:, :3] == (255, 0, 0)).all()  # straight alpha: colour is the colour


def test_text_is_centred_in_the_frame() -> None:
    a = alpha(render_still(props(text="centred"), 59, 1920, 1080))
    cols, rows = _ink_columns(a), _ink_rows(a)
    assert abs((cols[0] + cols[-1]) / 2 - 960) < 6
    assert abs((rows[0] + rows[-1]) / 2 - 540) < 30


def test_slide_up_starts_100px_low() -> None:
    p = props(style="slide-up", text="slide", background_color="#000000", color="#FFFFFF")
    start = np.asarray(Image.open(io.BytesIO(render_still(p, 3, 1920, 1080))))[..., 0]
    rest = np.asarray(Image.open(io.BytesIO(render_still(p, 40, 1920, 1080))))[..., 0]
    expected = round(100 * (1 - 0.1) ** 3)  # offset at frame 3: 100 * (1 - e)
    assert _ink_rows(start > 0)[0] - _ink_rows(rest > 0)[0] == pytest.approx(expected, abs=1)


def test_scale_grows_the_box_about_its_centre() -> None:
    p = props(style="scale", text="scale me", font_size=100, duration_in_frames=90)
    small = alpha(render_still(p, 3, 1920, 1080))  # s = 0.34
    peak = alpha(render_still(p, 11, 1920, 1080))  # s = 1.16
    rest = alpha(render_still(p, 80, 1920, 1080))
    widths = [np.ptp(_ink_columns(a)) for a in (small, peak, rest)]
    assert widths[0] / widths[2] == pytest.approx(0.3403, rel=0.05)
    assert widths[1] / widths[2] == pytest.approx(1.1629, rel=0.03)
    for a in (small, peak):
        cols = _ink_columns(a)
        assert abs((cols[0] + cols[-1]) / 2 - 960) < 6
    assert alpha(render_still(p, 0, 1920, 1080)).max() == 0  # s(0) = 0: nothing


def test_typewriter_shows_a_cursor_then_the_text() -> None:
    p = props(style="typewriter", text="abc", duration_in_frames=100)
    cursor_only = alpha(render_still(p, 0, 1920, 1080))
    blink_off = alpha(render_still(p, 15, 1920, 1080))
    assert 0 < np.ptp(_ink_columns(cursor_only)) < 20
    assert blink_off.max() == 0  # n = 0 and the cursor off: nothing to draw
    assert np.ptp(_ink_columns(alpha(render_still(p, 99, 1920, 1080)))) > 60


def test_smaller_render_is_the_1080p_frame_scaled() -> None:
    p = props(text="Scaled uniformly, not reflowed", font_size=90, background_color="#102030")
    big = Image.open(io.BytesIO(render_still(p, 45, 1920, 1080))).convert("L")
    small = np.asarray(Image.open(io.BytesIO(render_still(p, 45, 960, 540))).convert("L"))
    expected = np.asarray(big.resize((960, 540), Image.Resampling.BOX))
    diff = np.abs(small.astype(int) - expected.astype(int))
    assert diff.mean() < 1.5
    assert np.ptp(_ink_columns(small > 100)) == pytest.approx(
        np.ptp(_ink_columns(expected > 100)), abs=4
    )


@pytest.mark.parametrize(
    "text",
    ["W" * 500, "word " * 100, "👍" * 300, "x\u0301\u0302\u0303" * 120, "中文" * 200],
)
def test_nothing_is_drawn_outside_the_padded_width(text: str) -> None:
    for width, height in ((1920, 1080), (640, 360)):
        p = props(text=text, font_size=120, style="scale")
        for frame in (11, 59):  # the spring's overshoot, and at rest
            a = alpha(render_still(p, frame, width, height))
            pad = PADDING_X * width / 1920
            cols = _ink_columns(a)
            assert cols.size and cols[0] >= pad - 1e-9 and cols[-1] < width - pad


def test_long_word_breaks_and_lines_fit() -> None:
    lay = layout("A" * 500, resolve_family("Inter"), 48)
    assert len(lay.lines) > 5
    assert all(line.width <= MAX_LINE + 1e-6 for line in lay.lines)
    assert "".join(run.text for line in lay.lines for run in line.runs) == "A" * 500


def test_pre_wrap_newlines_spaces_and_line_height() -> None:
    inter = resolve_family("Inter")
    lay = layout("one\n\n  two", inter, 100)
    assert len(lay.lines) == 3
    assert lay.lines[1].runs == ()  # an empty line still takes its height
    heights = {round(b.baseline - a.baseline, 6) for a, b in itertools.pairwise(lay.lines)}
    assert heights == {121.0}  # Inter: round(96.875) + round(24.121) + 0
    assert lay.lines[2].runs[0].text == "  two"  # leading spaces are kept
    assert layout("trailing\n", inter, 100).lines[0].runs[0].text == "trailing"
    assert len(layout("trailing\n", inter, 100).lines) == 1
    # Spaces at a wrap hang: the wrapped line is centred on its words alone.
    words = layout("lorem ipsum " * 40, inter, 100)
    assert len(words.lines) > 1
    assert not words.lines[0].runs[-1].text.endswith(" ")


def test_right_to_left_text_is_ordered_right_to_left() -> None:
    lay = layout("abc שלום עולם def", resolve_family("Inter"), 48)
    runs = [run for run in lay.lines[0].runs if run.text.strip()]
    texts = [run.text.strip() for run in runs]
    assert texts[0] == "abc" and texts[-1] == "def"
    hebrew = [run for run in runs if any("\u0590" <= ch <= "\u05ff" for ch in run.text)]
    assert hebrew and all(run.rtl for run in hebrew)
    xs = [run.x for run in lay.lines[0].runs]
    assert xs == sorted(xs)  # runs are listed left to right


def test_per_glyph_fallback_picks_a_font_that_has_the_glyph() -> None:
    inter = resolve_family("Inter")
    text = "Hi שלום مرحبا 你好 😀 नमस्ते"
    lay = layout(text, inter, 48)
    for run in lay.lines[0].runs:
        for ch in run.text:
            if ch.isspace() or not any(covers(f, ord(ch)) for f in (inter, *fallback_chain())):
                continue  # tofu is allowed only when no installed font has the character
            assert covers(run.face, ord(ch)), (ch, run.face)


def test_font_families_resolve_from_pip_packages() -> None:
    assert "Roboto" in resolve_family("Roboto").path
    assert "OpenSans" in resolve_family("'Open Sans', sans-serif").path
    assert "PlayfairDisplay" in resolve_family("playfair display").path
    assert "Inter" in resolve_family("sans-serif").path


def test_a_family_read_from_its_package_is_the_registry_s() -> None:
    """The fast path reads ``fontpkg_<slug>`` directly; anything else goes to the registry."""
    import fontpkg

    from renderlab.render.fonts import _pip_family

    for name in ("Inter", "Open Sans", "noto sans arabic", "Playfair Display"):
        assert _pip_family(name) == fontpkg.family(name)
    for name in ("Noto Sans Hebrew", "No Such Font 12345", "../etc"):
        with pytest.raises(fontpkg.FamilyNotInstalled):
            _pip_family(name)


def test_missing_font_falls_back_to_inter_with_a_warning() -> None:
    face = resolve_family("No Such Font 12345")
    assert "Inter" in face.path
    assert fonts.fallback_note("No Such Font 12345") == (
        "font_family 'No Such Font 12345' is not installed here: the text is drawn in Inter."
    )
    assert fonts.fallback_note("Roboto, No Such Font 12345") is None
    png = render_still(props(font_family="No Such Font 12345"), 45, 640, 360)
    assert alpha(png).max() == 255


def test_size_validation() -> None:
    limits = Limits()
    validate_size(1920, 1080, limits)
    validate_size(16, 16, limits)
    cases = [
        (
            (3840, 2160),
            "width",
            "resolution_too_large",
            "Resolution too large. Maximum is 1920x1080.",
        ),
        (
            (1920, 1082),
            "height",
            "resolution_too_large",
            "Resolution too large. Maximum is 1920x1080 (the shorter side at most 1080).",
        ),
        (
            (1920, 1920),
            "height",
            "resolution_too_large",
            "Resolution too large. Maximum is 1920x1080 (the shorter side at most 1080).",
        ),
        (
            (641, 360),
            "width",
            "invalid_resolution",
            "Width and height must be even numbers of at least 16 pixels.",
        ),
        (
            (640, 8),
            "height",
            "invalid_resolution",
            "Width and height must be even numbers of at least 16 pixels.",
        ),
    ]
    for (width, height), field, code, message in cases:
        with pytest.raises(CapError) as info:
            validate_size(width, height, limits)
        assert (info.value.field, info.value.code, str(info.value)) == (field, code, message)
        assert isinstance(info.value, ValueError)


def test_duration_above_the_cap_is_refused() -> None:
    limits = Limits(max_duration_seconds=10, max_duration_frames=600)
    validate_duration(props(duration_in_frames=300), limits)
    with pytest.raises(CapError) as info:
        validate_duration(props(duration_in_frames=301), limits)
    assert info.value.field == "duration_in_frames"
    assert info.value.code == "duration_too_long"
    assert str(info.value) == "Animation too long. Maximum duration is 10 seconds."


def test_still_refuses_bad_frames_and_sizes() -> None:
    with pytest.raises(CapError) as info:
        render_still(props(), 60, 640, 360)
    assert info.value.field == "frame"
    with pytest.raises(CapError) as info:
        render_still(props(), 0, 3840, 2160)
    assert info.value.field == "width"
    with pytest.raises(ValueError, match="style"):
        render_still({"text": "x", "style": "bounce", "color": "#FFFFFF"}, 0)


def _clear_font_caches() -> None:
    for cached in (
        fonts._system_files,
        fonts._system_families,
        fonts.find_family,
        fonts._resolved,
        fonts.fallback_chain,
        fonts.emoji_faces,
        fonts.usable,
    ):
        cached.cache_clear()


def test_a_broken_font_file_is_skipped_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "BrokenFamily-Regular.ttf").write_bytes(b"\x00\x01\x00\x00" + b"\xff" * 64)
    (tmp_path / "EmptyFamily.ttf").write_bytes(b"")
    monkeypatch.setenv("RENDERLAB_FONT_DIRS", str(tmp_path))
    _clear_font_caches()
    try:
        for family in ("Broken Family", "EmptyFamily"):
            assert "Inter" in resolve_family(family).path
            png = render_still(props(font_family=family, text="still renders"), 45, 320, 180)
            assert alpha(png).max() == 255
    finally:
        monkeypatch.delenv("RENDERLAB_FONT_DIRS")
        _clear_font_caches()


def test_callers_may_pass_their_own_limits() -> None:
    big = Limits(max_width=2560, max_height=1440)
    png = render_still(props(), 45, 2560, 1440, limits=big)
    assert Image.open(io.BytesIO(png)).size == (2560, 1440)
    with pytest.raises(CapError):
        render_still(props(), 45, 2560, 1440)
    with pytest.raises(CapError) as info:
        render_still(
            props(duration_in_frames=90), 0, 320, 180, limits=Limits(max_duration_seconds=2)
        )
    assert info.value.field == "duration_in_frames"
