"""Encoded video: what ffprobe sees, and that every frame decodes to the still of that frame."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from renderlab.caps import CapError
from renderlab.render import render_chunk, render_still, render_video
from renderlab.render.chunks import picture_runs
from renderlab.render.compose import YuvCanvas
from renderlab.render.encode import SegmentWriter
from renderlab.render.frames import FramePainter
from tests.render_helpers import (
    decode_luma,
    ffprobe,
    mean_abs_diff,
    packet_sizes,
    play_in_chromium,
    props,
    still_luma,
    top_level_boxes,
)


def test_default_render_probes_as_constant_30fps_with_every_frame(tmp_path: Path) -> None:
    p = props(text="Default render, 1080p", duration_in_frames=90)  # the default duration
    out = tmp_path / "default.mp4"
    result = render_video(p, out)
    info = ffprobe(out)
    assert info["codec_name"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == (1920, 1080)
    assert int(info["nb_read_frames"]) == 90 == result.frames
    assert info["r_frame_rate"] == "30/1" and info["avg_frame_rate"] == "30/1"
    assert float(info["duration"]) == pytest.approx(3.0, abs=1e-3)
    assert float(info["format"]["duration"]) == pytest.approx(3.0, abs=1e-3)
    assert (info["color_space"], info["color_range"]) == ("bt709", "tv")
    assert info["format"]["format_name"].startswith("mov,mp4")
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat")  # +faststart: plays while downloading
    assert result.bytes == out.stat().st_size


@pytest.mark.parametrize("style", ["fade-in", "slide-up", "scale", "typewriter"])
def test_every_frame_decodes_to_its_still(tmp_path: Path, style: str) -> None:
    p = props(
        style=style,
        text="Frame exact: שלום, ✓ 123",
        color="#FFCC00",
        background_color="#203040" if style == "scale" else None,
        duration_in_frames=70,
    )
    out = tmp_path / f"{style}.mp4"
    render_video(p, out, width=640, height=360)
    frames = decode_luma(out)
    assert len(frames) == 70
    for index, luma in enumerate(frames):
        expected = still_luma(render_still(p, index, 640, 360))
        assert mean_abs_diff(luma, expected) < 0.6, index


def test_identical_frames_are_encoded_once(tmp_path: Path) -> None:
    p = props(duration_in_frames=120)
    out = tmp_path / "fade.mp4"
    render_video(p, out, width=1280, height=720)
    sizes = packet_sizes(out)
    assert len(sizes) == 120
    # Frame 0 is blank, 1..30 fade, from 31 on each packet repeats frame 30: skip pictures,
    # except frame 60, where the 2-second IDR encodes that picture again.
    repeats = sizes[31:60] + sizes[61:]
    assert max(repeats) < 64
    assert len(set(repeats)) == 1
    assert sizes[60] > 1000
    painter = FramePainter(p, 1280, 720)
    assert len(picture_runs(painter, 0, 120)) == 31


def test_repeats_work_with_cavlc_too(tmp_path: Path) -> None:
    """ultrafast uses CAVLC; veryfast (the default) CABAC: skip pictures are written for both."""
    p = props(style="typewriter", text="cavlc", duration_in_frames=60)
    painter = FramePainter(p, 320, 180)
    canvas = YuvCanvas(320, 180, painter.background, painter.colour)
    out = tmp_path / "cavlc.mp4"
    writer = SegmentWriter(out, width=320, height=180, fps=30, total=60, preset="ultrafast")
    for key, count in picture_runs(painter, 0, 60):
        canvas.paint(painter.tile(key), key.opacity)
        writer.write(canvas.buffer, count)
    writer.close()
    frames = decode_luma(out)
    assert len(frames) == 60
    for index, luma in enumerate(frames):
        assert mean_abs_diff(luma, still_luma(render_still(p, index, 320, 180))) < 0.6


def test_crf_is_configurable(tmp_path: Path) -> None:
    p = props(style="scale", text="Quality", font_size=120, duration_in_frames=30)
    sizes = {}
    for crf in (10, 40):
        out = tmp_path / f"crf{crf}.mp4"
        sizes[crf] = render_video(p, out, width=640, height=360, crf=crf).bytes
    assert sizes[10] > 2 * sizes[40]
    with pytest.raises(CapError) as info:
        render_video(p, tmp_path / "bad.mp4", width=640, height=360, crf=52)
    assert info.value.field == "crf"


def test_progress_is_reported_and_a_raising_callback_aborts(tmp_path: Path) -> None:
    p = props(duration_in_frames=60)
    seen: list[tuple[int, int]] = []
    render_chunk(
        p,
        0,
        60,
        tmp_path / "ok.mp4",
        width=320,
        height=180,
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (60, 60)
    assert [d for d, _ in seen] == sorted({d for d, _ in seen})
    done = [0] + [d for d, _ in seen]
    assert all(b - a <= 5 for a, b in itertools.pairwise(done))

    class Stop(Exception):
        pass

    def stop_at_20(done: int, total: int) -> None:
        if done >= 20:
            raise Stop

    partial = tmp_path / "partial.mp4"
    with pytest.raises(Stop):
        render_chunk(p, 0, 60, partial, width=320, height=180, on_progress=stop_at_20)
    assert not partial.exists()


def test_bad_settings_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "never.mp4"
    with pytest.raises(CapError) as info:
        render_video(props(), out, width=3840, height=2160)
    assert info.value.field == "width" and info.value.code == "resolution_too_large"
    with pytest.raises(ValueError, match="font_size"):
        render_video({"text": "x", "style": "scale", "color": "#FFFFFF", "font_size": 500}, out)
    with pytest.raises(CapError):
        render_chunk(props(), 50, 70, out, width=320, height=180)
    assert not out.exists()


def test_plays_in_a_browser(tmp_path: Path) -> None:
    p = props(style="typewriter", text="Plays in Chromium", color="#00FF00", duration_in_frames=60)
    out = tmp_path / "web.mp4"
    render_video(p, out, width=640, height=360)
    played = play_in_chromium(out)
    assert played["ended"] and played["duration"] == pytest.approx(2.0, abs=1e-3)
    assert (played["width"], played["height"]) == (640, 360)
    assert played["frames"] == 60
    last = decode_luma(out)[-1]
    assert played["lit"] == pytest.approx(int((last > 100).sum()), rel=0.15)
