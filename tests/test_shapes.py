"""Compositions of any shape: the size props, the caps on sides, the aspect check, and a
1080x1920 still laid out as headless Chromium lays out the same CSS in that viewport."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import sync_playwright
from pydantic import ValidationError

from renderlab import caps
from renderlab.caps import CapError
from renderlab.compositions.props import TextAnimationProps
from renderlab.limits import Limits
from renderlab.render import render_still, render_video
from renderlab.render.fonts import resolve_family
from tests.render_helpers import ffprobe, props
from tests.web_helpers import CHROMIUM_ARGS, require_chromium


@pytest.mark.parametrize("size", [(1080, 1920), (1080, 1080), (1080, 1350), (1920, 1080)])
def test_valid_composition_sizes(size: tuple[int, int]) -> None:
    p = props(width=size[0], height=size[1])
    assert (p.width, p.height) == size
    caps.check_size(*size, Limits())


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"width": 1920, "height": 1920}, "height"),
        ({"width": 1081, "height": 1920}, "width"),
        ({"width": 1080, "height": 1921}, "height"),
        ({"width": 14, "height": 16}, "width"),
        ({"width": 2000, "height": 1080}, "width"),
        ({"width": "1080", "height": 1920}, "width"),
        ({"width": 1080.0, "height": 1920}, "width"),
        ({"width": True, "height": 1920}, "width"),
    ],
)
def test_invalid_composition_sizes_name_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        TextAnimationProps.model_validate(
            {"text": "x", "style": "scale", "color": "#FFFFFF", **values}
        )
    assert info.value.errors()[0]["loc"] == (field,)


def test_props_without_a_size_are_the_old_1920x1080_composition() -> None:
    p = TextAnimationProps.model_validate({"text": "Old", "style": "fade-in", "color": "#FFFFFF"})
    assert (p.width, p.height) == (1920, 1080)
    old = render_still(p, 40, 960, 540)
    explicit = render_still(props(text="Old", font_size=48, width=1920, height=1080), 40, 960, 540)
    assert old == explicit


def test_caps_bound_the_long_and_the_short_side() -> None:
    limits = Limits()
    caps.check_size(1080, 1920, limits)
    with pytest.raises(caps.CapError) as info:
        caps.check_size(1920, 1920, limits)
    assert info.value.code == "resolution_too_large"
    with pytest.raises(caps.CapError) as info:
        caps.check_size(1080, 1922, limits)
    assert (info.value.field, info.value.code) == ("height", "resolution_too_large")
    assert caps.default_size(limits, 1080, 1920) == caps.RenderSize(1080, 1920)
    assert caps.default_size(Limits(max_width=1280, max_height=720), 1080, 1920) == (
        caps.RenderSize(720, 1280)
    )
    assert caps.default_size(limits) == caps.RenderSize(1920, 1080)


def test_a_smaller_render_scales_and_another_aspect_is_refused(tmp_path: Path) -> None:
    p = props(text="Portrait", width=1080, height=1920, background_color="#000000")
    full = np.asarray(Image.open(io.BytesIO(render_still(p, 40, 1080, 1920))).convert("L"))
    half = np.asarray(Image.open(io.BytesIO(render_still(p, 40, 540, 960))).convert("L"))
    shrunk = np.asarray(Image.fromarray(full).resize((540, 960), Image.Resampling.BOX))
    assert float(np.abs(half.astype(int) - shrunk).mean()) < 1.5
    for size in ((1920, 1080), (1080, 1080)):
        with pytest.raises(CapError) as info:
            render_video(p, tmp_path / "bad.mp4", width=size[0], height=size[1])
        assert info.value.code == "invalid_resolution"
    out = tmp_path / "portrait.mp4"
    render_video(p, out, width=540, height=960)
    info_probe = ffprobe(out)
    assert (info_probe["width"], info_probe["height"]) == (540, 960)


def test_one_side_alone_gives_the_other_at_the_compositions_aspect() -> None:
    """A width alone was set against the default height (1280 for 1920x1080 made 1280x1080, a
    422): now it is 1280x720, as the CLI made it, and neither side is the composition's own."""
    limits = Limits()
    assert caps.requested_size(limits, 1920, 1080, 1280, None) == caps.RenderSize(1280, 720)
    assert caps.requested_size(limits, 1080, 1920, None, 960) == caps.RenderSize(540, 960)
    assert caps.requested_size(limits, 1080, 1350, 540, None) == caps.RenderSize(540, 676)
    assert caps.requested_size(limits, 1920, 1080, None, None) == caps.RenderSize(1920, 1080)
    assert caps.requested_size(limits, 1920, 1080, 1000, 1000) == caps.RenderSize(1000, 1000)
    with pytest.raises(CapError) as info:
        caps.check_aspect(1080, 1920, 1920, 1080)
    assert info.value.message == (
        "1080x1920 is not the shape of this 1920x1080 composition (at width 1080 it is"
        " 1080x608). For another shape, make the composition that shape: set width and height"
        " in its props."
    )


def _css_page(p: TextAnimationProps, font: Path) -> str:
    data = base64.b64encode(font.read_bytes()).decode()
    return f"""<!doctype html><html><head><style>
@font-face {{ font-family: "Inter"; src: url(data:font/ttf;base64,{data}); }}
html, body {{ margin: 0; width: {p.width}px; height: {p.height}px; }}
body {{ background: {p.background_color}; display: flex; align-items: center;
        justify-content: center; }}
div {{ font-family: "Inter"; font-size: {p.font_size}px; color: {p.color};
       text-align: center; white-space: pre-wrap; word-break: break-word;
       padding: 0 40px; box-sizing: border-box; width: 100%; }}
</style></head><body><div id="t"></div></body></html>"""


def _bands(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Each run of inked rows: (top, bottom, left, right) of the ink in it."""
    ink = gray > 96
    rows = ink.any(axis=1)
    bands, start = [], None
    for y, on in enumerate([*rows, False]):
        if on and start is None:
            start = y
        elif not on and start is not None:
            cols = np.flatnonzero(ink[start:y].any(axis=0))
            bands.append((start, y, int(cols[0]), int(cols[-1])))
            start = None
    return bands


def test_a_portrait_still_matches_chromium_drawing_the_same_css() -> None:
    text = "Vertical video for Reels, Shorts and TikTok, wrapped at one thousand pixels"
    p = props(
        text=text,
        style="fade-in",
        font_size=72,
        color="#FFFFFF",
        background_color="#000000",
        width=1080,
        height=1920,
    )
    ours = np.asarray(Image.open(io.BytesIO(render_still(p, 59, 1080, 1920))).convert("L"))
    font = Path(resolve_family("Inter").path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=require_chromium(), args=[*CHROMIUM_ARGS, "--headless"]
        )
        try:
            page = browser.new_page(viewport={"width": 1080, "height": 1920})
            page.set_content(_css_page(p, font))
            page.evaluate("(t) => { document.getElementById('t').textContent = t; }", text)
            page.evaluate("() => document.fonts.ready")
            shot = page.screenshot(full_page=False)
        finally:
            browser.close()
    theirs = np.asarray(Image.open(io.BytesIO(shot)).convert("L"))
    assert theirs.shape == ours.shape == (1920, 1080)
    ours_bands, their_bands = _bands(ours), _bands(theirs)
    print("renderlab", ours_bands, "\nchromium ", their_bands)
    assert len(ours_bands) == len(their_bands) >= 3  # it wraps at 1000 px, into several lines
    for a, b in zip(ours_bands, their_bands, strict=True):
        assert all(abs(x - y) <= 3 for x, y in zip(a, b, strict=True)), (a, b)
