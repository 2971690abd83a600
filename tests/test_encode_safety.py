"""H.264 output that is right by construction: colour at any size, repeats with any preset,
an IDR every 2 s of output, and no lossless High 4:4:4 streams."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from renderlab.caps import CapError
from renderlab.render import render_chunk, render_still, render_video
from renderlab.render.chunks import picture_runs
from renderlab.render.compose import YuvCanvas, rgb_to_yuv
from renderlab.render.encode import SegmentWriter
from renderlab.render.frames import FramePainter
from tests.render_helpers import (
    decode_luma,
    decode_yuv,
    ffprobe,
    mean_abs_diff,
    props,
    still_luma,
    still_yuv,
)


@pytest.mark.parametrize("size", [(480, 270), (640, 362), (800, 450), (1440, 810)])
def test_text_colour_sits_on_its_glyphs_at_heights_of_4n_plus_2(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    width, height = size
    p = props(
        text="Colour\nexact",
        font_size=200,
        color="#FF2000",
        background_color="#1040C0",
        duration_in_frames=40,
    )
    out = tmp_path / "colour.mp4"
    render_video(p, out, width=width, height=height)
    frames = decode_yuv(out)
    assert len(frames) == 40
    text = np.rint(rgb_to_yuv(np.array([255, 32, 0]))).astype(np.int16)
    for index, (y, u, v) in enumerate(frames):
        ey, eu, ev = still_yuv(render_still(p, index, width, height))
        assert y.shape == (height, width)
        assert mean_abs_diff(y, ey) < 0.6, index
        # Inside the glyphs (chroma of the text colour itself) the chroma must be the text's:
        # 2 rows early, these blocks show the background's or the edges' chroma.
        glyphs = (np.abs(eu.astype(np.int16) - text[1]) <= 3) & (
            np.abs(ev.astype(np.int16) - text[2]) <= 3
        )
        if index >= 30:
            assert glyphs.sum() > 20
        if glyphs.any():
            assert mean_abs_diff(u[glyphs], eu[glyphs]) < 12, index
            assert mean_abs_diff(v[glyphs], ev[glyphs]) < 12, index


@pytest.mark.parametrize("preset", ["faster", "medium"])
def test_repeats_stay_exact_with_presets_that_use_more_references(
    tmp_path: Path, preset: str
) -> None:
    p = props(style="typewriter", text="refs, refs, refs", duration_in_frames=90)
    painter = FramePainter(p, 320, 180)
    canvas = YuvCanvas(320, 180, painter.background, painter.colour)
    out = tmp_path / f"{preset}.mp4"
    writer = SegmentWriter(out, width=320, height=180, fps=30, total=90, preset=preset)
    for key, count in picture_runs(painter, 0, 90):
        canvas.paint(painter.tile(key), key.opacity)
        writer.write(canvas.buffer, count)
    writer.close()
    frames = decode_luma(out)
    assert len(frames) == 90
    for index, luma in enumerate(frames):
        assert mean_abs_diff(luma, still_luma(render_still(p, index, 320, 180))) < 0.6, index


def keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            i for i, pk in enumerate(p for p in container.demux(stream) if p.size) if pk.is_keyframe
        ]


def test_an_idr_every_two_seconds_and_skip_pictures_between(tmp_path: Path) -> None:
    p = props(duration_in_frames=300)  # 31 distinct pictures, then 269 repeats
    out = tmp_path / "seek.mp4"
    render_chunk(p, 0, 300, out, width=640, height=360)
    assert keyframes(out) == [0, 60, 120, 180, 240]
    with av.open(str(out)) as container:
        sizes = [pk.size for pk in container.demux(container.streams.video[0]) if pk.size]
    idrs = {0, 60, 120, 180, 240}
    repeats = [s for i, s in enumerate(sizes) if i > 31 and i not in idrs]
    assert max(repeats) < 64  # still skip pictures inside each GOP
    info = ffprobe(out)
    assert int(info["nb_read_frames"]) == 300
    frames = decode_luma(out)
    for index in (0, 30, 59, 60, 61, 299):
        assert mean_abs_diff(frames[index], still_luma(render_still(p, index, 640, 360))) < 0.6


def packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(pk) for pk in container.demux(container.streams.video[0]) if pk.size]


def test_a_held_picture_is_encoded_as_keyframe_once(tmp_path: Path) -> None:
    """Its later keyframes are the same bytes; a seek to any of them shows the picture."""
    p = props(duration_in_frames=300)
    out = tmp_path / "held.mp4"
    render_chunk(p, 0, 300, out, width=640, height=360)
    data = packets(out)
    assert len({data[i] for i in (60, 120, 180, 240)}) == 1
    assert data[60] != data[30]
    # A chunk whose first picture is held: the stream's first IDR is the one written again.
    chunk = tmp_path / "chunk.mp4"
    render_chunk(p, 100, 300, chunk, width=640, height=360)
    assert keyframes(chunk) == [0, 60, 120, 180]
    assert len({packets(chunk)[i] for i in (60, 120, 180)}) == 1
    frames = decode_luma(chunk)
    for index in (0, 59, 60, 119, 120, 199):
        expected = still_luma(render_still(p, 100 + index, 640, 360))
        assert mean_abs_diff(frames[index], expected) < 0.6, index
    with av.open(str(chunk)) as container:
        stream = container.streams.video[0]
        container.seek(130 * int(1 / stream.time_base / 30), stream=stream)
        frame = next(container.decode(stream))
    luma = frame.to_ndarray(format="yuv420p")[:360]
    assert mean_abs_diff(luma, still_luma(render_still(p, 220, 640, 360))) < 0.6


def test_a_seek_to_each_idr_decodes_the_right_picture(tmp_path: Path) -> None:
    p = props(style="typewriter", text="seek here and there", duration_in_frames=240)
    out = tmp_path / "seek.mp4"
    render_chunk(p, 0, 240, out, width=320, height=180)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        container.seek(150 * int(1 / stream.time_base / 30), stream=stream)
        frame = next(container.decode(stream))
        index = round(frame.pts * stream.time_base * 30)
    assert index == 120  # the IDR before the seek point
    luma = frame.to_ndarray(format="yuv420p")[:180]
    assert mean_abs_diff(luma, still_luma(render_still(p, 120, 320, 180))) < 0.6


def test_crf_zero_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(CapError) as info:
        render_video(props(), tmp_path / "lossless.mp4", width=320, height=180, crf=0)
    assert info.value.field == "crf"
    assert not (tmp_path / "lossless.mp4").exists()
    out = tmp_path / "best.mp4"
    render_video(props(), out, width=320, height=180, crf=1)
    assert ffprobe(out)["profile"] == "High"
