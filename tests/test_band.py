"""render.band: x264 given only the rows the text touches; the stream still decodes exactly."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from renderlab.render import render_chunk, render_still, render_video
from renderlab.render.band import BandUnavailable, _parameter_sets, plan_band
from renderlab.render.compose import YuvCanvas, background_yuv
from renderlab.render.encode import SegmentWriter
from renderlab.render.frames import FramePainter
from renderlab.render.h264 import NAL_IDR, NAL_SLICE, read_slice, split_annexb, write_slice
from tests.render_helpers import decode_luma, mean_abs_diff, play_in_chromium, props, still_luma

W, H = 1280, 720
TYPED = "The quick brown fox jumps over the lazy dog, twice."


@pytest.fixture(autouse=True)
def no_scratch_left(tmp_path: Path) -> Iterator[None]:
    """Every test leaves no reconstruction file behind, whatever happened."""
    yield
    assert not list(tmp_path.glob(".renderlab-band-*"))


def slices_per_picture(path: Path) -> list[int]:
    """The slice NAL units of each packet (MP4 packets are length-prefixed NAL units)."""
    counts = []
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.video[0]):
            data, count, at = bytes(packet), 0, 0
            while at + 4 <= len(data):
                (length,) = struct.unpack(">I", data[at : at + 4])
                count += data[at + 4] & 0x1F in (NAL_SLICE, NAL_IDR)
                at += 4 + length
            if data:
                counts.append(count)
    return counts


def check_frames(p, path: Path, width: int, height: int) -> None:  # type: ignore[no-untyped-def]
    frames = decode_luma(path)
    assert len(frames) == p.duration_in_frames
    for index, luma in enumerate(frames):
        expected = still_luma(render_still(p, index, width, height))
        assert mean_abs_diff(luma, expected) < 0.6, index


@pytest.mark.parametrize("style", ["fade-in", "slide-up", "scale", "typewriter"])
def test_a_title_is_encoded_in_a_band_and_decodes_to_its_stills(tmp_path: Path, style: str) -> None:
    p = props(
        style=style,
        text=TYPED if style == "typewriter" else "Band ✓ שלום",
        color="#FFCC00",
        background_color="#203040" if style in ("scale", "typewriter") else None,
        duration_in_frames=90,
    )
    out = tmp_path / f"{style}.mp4"
    render_chunk(p, 0, 90, out, width=W, height=H)
    counts = slices_per_picture(out)
    assert counts[0] == 3  # flat rows above, the band, flat rows below
    assert 3 in counts[1:] or (style == "fade-in" and max(counts[1:]) <= 3)
    check_frames(p, out, W, H)
    # Above and below the band nothing but the background, exactly, in every frame.
    background = still_luma(render_still(p, 0, W, H))[0, 0]
    for luma in decode_luma(out):
        assert (luma[:64] == background).all() and (luma[-64:] == background).all()


def test_a_portrait_band_counts_the_cropped_macroblock_column(tmp_path: Path) -> None:
    """1080 wide is 67.5 macroblocks: the stream has 68, the last one cropped."""
    p = props(style="slide-up", text="Portrait", width=1080, height=1920, duration_in_frames=45)
    out = tmp_path / "portrait.mp4"
    render_chunk(p, 0, 45, out, width=1080, height=1920)
    assert slices_per_picture(out)[0] == 3
    check_frames(p, out, 1080, 1920)


def test_when_x264_cannot_keep_the_edges_exact_whole_pictures_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At crf 45 the band's flat edge rows are not reconstructed exactly: the band tried (the
    cap on its crf lifted) gives way to whole pictures, and progress never goes back."""
    import renderlab.render.chunks as chunks

    monkeypatch.setattr(chunks, "BAND_MAX_CRF", 51)
    p = props(style="typewriter", text=TYPED, duration_in_frames=60)
    out = tmp_path / "coarse.mp4"
    reported: list[int] = []
    render_chunk(
        p, 0, 60, out, width=W, height=H, crf=45, on_progress=lambda d, t: reported.append(d)
    )
    assert set(slices_per_picture(out)) == {1}
    assert reported == sorted(reported) and reported[-1] == 60  # never went back
    frames = decode_luma(out)
    assert len(frames) == 60


def test_text_outside_the_planned_band_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    p = props(duration_in_frames=40)
    painter = FramePainter(p, W, H)
    canvas = YuvCanvas(W, H, painter.background, painter.colour)
    out = tmp_path / "refused.mp4"
    writer = SegmentWriter(
        out, width=W, height=H, fps=30, total=40, band=((2, 10), background_yuv(painter.background))
    )
    canvas.paint(painter.tile(painter.picture_key(painter.state(35))), 1.0)
    assert canvas.rows is not None and canvas.rows[0] > 10 * 16  # the text is mid-frame
    with pytest.raises(BandUnavailable, match="leaves the band"):
        writer.write(canvas.buffer, 40, canvas.rows)
    writer.abort()
    assert not out.exists()


def test_segments_encoded_in_bands_join_into_one_stream(tmp_path: Path) -> None:
    p = props(style="slide-up", text="Joined", duration_in_frames=90)
    out = tmp_path / "joined.mp4"
    render_video(p, out, width=W, height=H, chunk_size=30)
    assert slices_per_picture(out).count(3) >= 3  # each segment starts with a band keyframe
    check_frames(p, out, W, H)


def test_the_band_covers_the_text_with_a_margin_or_is_not_worth_it() -> None:
    assert plan_band([], 1080) is None
    assert plan_band([(0, 0)], 1080) is None  # blank pictures only
    assert plan_band([(500, 560), (510, 600)], 1080) == (30, 39)  # a row of margin each side
    assert plan_band([(0, 40)], 1080) == (0, 4)
    assert plan_band([(1000, 1080)], 1080) == (61, 68)  # 1080 rows are 68 macroblock rows
    assert plan_band([(100, 900)], 1080) is None  # most of the picture: whole pictures


def test_a_slice_header_read_and_written_back_is_the_same_bytes(tmp_path: Path) -> None:
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 320, 192, "yuv420p"
    ctx.time_base = Fraction(1, 30)
    ctx.flags |= av.codec.context.Flags.global_header
    ctx.options = {"preset": "veryfast", "x264-params": "bframes=0:ref=1:weightp=2"}
    ctx.open()
    sps, pps, _ = _parameter_sets(bytes(ctx.extradata or b""))
    frame = av.VideoFrame(320, 192, "yuv420p")
    rng = np.random.default_rng(1)
    units = []
    for i in range(8):
        for plane in frame.planes:
            view = np.frombuffer(memoryview(plane), np.uint8)
            view[:] = rng.integers(0, 255, view.size) // (i + 1)  # a fade: weighted prediction
        frame.pts = i
        units += [u for p in ctx.encode(frame) for u in split_annexb(bytes(p))]
    units += [u for p in ctx.encode(None) for u in split_annexb(bytes(p))]
    slices = [u for u in units if u[0] & 0x1F in (NAL_SLICE, NAL_IDR)]
    assert len(slices) >= 8  # (slice threads may cut a picture in two: more to check)
    for unit in slices:
        header = read_slice(unit, sps, pps)
        assert write_slice(header) == unit
        moved = read_slice(write_slice(header, first_mb=120), sps, pps)
        assert moved.value("first_mb") == 120 and moved.data == header.data


def test_a_band_encoded_video_plays_in_a_browser(tmp_path: Path) -> None:
    """Chromium's decoder, not only FFmpeg's, plays the stitched slices to the last frame."""
    p = props(style="typewriter", text="Plays in a band", color="#00FF00", duration_in_frames=60)
    out = tmp_path / "web.mp4"
    render_video(p, out, width=W, height=H)
    assert slices_per_picture(out)[0] == 3
    played = play_in_chromium(out)
    assert played["ended"] and played["duration"] == pytest.approx(2.0, abs=1e-3)
    assert (played["width"], played["height"]) == (W, H)
    assert played["frames"] == 60
    last = decode_luma(out)[-1]
    assert played["lit"] == pytest.approx(int((last > 100).sum()), rel=0.15)


@pytest.mark.parametrize(
    ("text", "size"),
    [("Hello world", 96), ("Hello world", 200), ("Tall gjpqy ÅÉ\nsecond line", 160)],
)
def test_every_typed_picture_lies_in_the_planned_band(text: str, size: int) -> None:
    """The cursor reaches below the baseline, and each prefix is laid out anew: the band is
    planned from the pictures that reach farthest, the typed ones with their cursor too."""
    from renderlab.render.chunks import _text_rows, picture_runs
    from renderlab.render.frames import FramePainter

    p = props(style="typewriter", text=text, font_size=size, duration_in_frames=45)
    painter = FramePainter(p, 1920, 1080)
    runs = picture_runs(painter, 0, 45)
    band = plan_band(_text_rows(painter, runs), 1080)
    assert band is not None
    top, bottom = band[0] * 16, band[1] * 16
    for key, _ in runs:
        tile = painter.tile(key)
        if tile is not None:
            assert top <= tile.y and tile.y + tile.height <= bottom, (key, tile.y, band)


def test_above_the_bands_crf_no_band_is_tried(tmp_path: Path) -> None:
    """At crf 28 every band fell back (BAND_MAX_CRF): the render goes straight to whole
    pictures, without the band's set-up (its flat slices are never made)."""
    from renderlab.render import band as band_module

    p = props(style="fade-in", text="Coarse", background_color="#123456", duration_in_frames=30)
    before = band_module._flat_slices.cache_info()
    out = tmp_path / "crf28.mp4"
    render_chunk(p, 0, 30, out, width=W, height=H, crf=band_module.BAND_MAX_CRF + 1)
    after = band_module._flat_slices.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)
    assert set(slices_per_picture(out)) == {1}
    assert len(decode_luma(out)) == 30
    render_chunk(p, 0, 30, tmp_path / "crf27.mp4", width=W, height=H, crf=band_module.BAND_MAX_CRF)
    tried = band_module._flat_slices.cache_info()
    assert tried.hits + tried.misses > after.hits + after.misses  # at the cap, it is tried
