"""Every codec: descriptors, alpha where the format has it, frames equal to their stills
(PSNR printed), repeats written cheaply, GIF loops with a transparent index, posters."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from renderlab.caps import CODECS, CapError
from renderlab.render import (
    FORMATS,
    codec_for_output,
    get_format,
    join_segments,
    render_chunk,
    render_poster,
    render_still,
    render_video,
    render_warnings,
)
from tests.render_helpers import (
    decode_rgba,
    ffprobe,
    packet_sizes,
    play_in_chromium,
    premultiplied,
    props,
    psnr,
    still_rgba,
)

W, H = 640, 360
DECODERS = {"vp9": "libvpx-vp9", "prores": None}
PSNR_FLOOR = {"vp9": 38.0, "prores": 60.0}


def test_the_descriptor_table() -> None:
    assert tuple(FORMATS) == CODECS == ("h264", "vp9", "prores", "gif")
    table = {c: (f.extension, f.content_type, f.carries_alpha) for c, f in FORMATS.items()}
    assert table == {
        "h264": (".mp4", "video/mp4", False),
        "vp9": (".webm", "video/webm", True),
        "prores": (".mov", "video/quicktime", True),
        "gif": (".gif", "image/gif", True),
    }
    assert get_format("vp9").pixel_format(transparent=True) == "yuva420p"
    assert get_format("prores").pixel_format(transparent=True) == "yuva444p10le"
    assert [c for c, f in FORMATS.items() if f.joinable] == ["h264", "prores"]
    with pytest.raises(CapError) as info:
        get_format("av1")
    assert info.value.field == "codec"


def test_the_codec_follows_the_flag_or_the_extension() -> None:
    assert codec_for_output("a/b.WEBM").codec == "vp9"
    assert codec_for_output("clip.mov").codec == "prores"
    assert codec_for_output("clip.gif", "gif").codec == "gif"
    with pytest.raises(CapError, match=r"writes \.mp4 files"):
        codec_for_output("clip.webm", "h264")
    with pytest.raises(CapError, match="Cannot tell the codec"):
        codec_for_output("clip.avi")


def test_h264_of_a_transparent_composition_warns() -> None:
    transparent, opaque = props(), props(background_color="#102030")
    (warning,) = render_warnings(transparent, "h264")
    assert "black" in warning and "H.264" in warning and "vp9" in warning
    assert "Set background_color" in warning  # the simplest fix, named first
    assert render_warnings(opaque, "h264") == []
    for codec in ("vp9", "prores"):
        assert render_warnings(transparent, codec) == []


def test_gif_of_a_transparent_composition_warns_of_hard_edges_and_a_stepped_fade() -> None:
    """GIF keeps transparency at one bit (a pixel is text where its coverage is at least half):
    a fade over a transparent background is a jump, which the render says before it starts."""
    (fade,) = render_warnings(props(style="fade-in"), "gif")
    assert "edges are hard and its fade shows as one step" in fade and "background_color" in fade
    (scale,) = render_warnings(props(style="scale"), "gif")
    assert "edges are hard." in scale and "fade" not in scale
    assert render_warnings(props(style="fade-in", background_color="#102030"), "gif") == []


def away_from_text(rgba: np.ndarray, margin: int = 8) -> np.ndarray:
    """Background pixels more than ``margin`` px outside the box of everything drawn."""
    mask = np.ones(rgba.shape[:2], dtype=bool)
    ys, xs = np.nonzero(rgba[..., 3])
    if len(ys):
        top, left = max(0, ys.min() - margin), max(0, xs.min() - margin)
        mask[top : ys.max() + margin + 1, left : xs.max() + margin + 1] = False
    return mask


@pytest.mark.parametrize("codec", ["vp9", "prores"])
@pytest.mark.parametrize("style", ["fade-in", "typewriter"])
def test_every_frame_matches_its_still_with_alpha(tmp_path: Path, codec: str, style: str) -> None:
    p = props(style=style, text="Alpha ✓ over anything", color="#FFCC00", duration_in_frames=90)
    out = tmp_path / f"clip{get_format(codec).extension}"
    render_video(p, out, width=W, height=H, codec=codec)
    info = ffprobe(out)
    assert int(info["nb_read_frames"]) == 90 and (info["width"], info["height"]) == (W, H)
    frames = decode_rgba(out, DECODERS[codec])
    assert len(frames) == 90
    scores = []
    for index, decoded in enumerate(frames):
        expected = still_rgba(render_still(p, index, W, H))
        text = expected[..., 3] == 255
        assert (decoded[..., 3][away_from_text(expected)] == 0).all(), index
        if text.any():
            assert decoded[..., 3][text].mean() > 250, index
        scores.append(psnr(premultiplied(decoded), premultiplied(expected)))
    finite = [s for s in scores if s != float("inf")]
    print(f"{codec} {style}: PSNR min {min(finite):.1f} dB, mean {np.mean(finite):.1f} dB")
    assert min(scores) >= PSNR_FLOOR[codec]


@pytest.mark.parametrize("codec", ["vp9", "prores"])
def test_opaque_backgrounds_have_no_alpha_and_repeats_are_cheap(tmp_path: Path, codec: str) -> None:
    p = props(background_color="#203040", duration_in_frames=150)  # 31 pictures, 119 repeats
    out = tmp_path / f"opaque{get_format(codec).extension}"
    render_video(p, out, width=W, height=H, codec=codec)
    assert ffprobe(out)["pix_fmt"] == {"vp9": "yuv420p", "prores": "yuv444p12le"}[codec]
    sizes = packet_sizes(out)
    assert len(sizes) == 150
    with av.open(str(out)) as container:
        keys = [
            i for i, pk in enumerate(container.demux(container.streams.video[0])) if pk.is_keyframe
        ]
    if codec == "vp9":
        assert max(sizes[32:60] + sizes[61:120] + sizes[121:]) == 1  # show_existing_frame
        assert keys[:3] == [0, 60, 120]  # seekable every 2 s
    else:
        assert len(set(sizes[31:])) == 1  # the same intra packet again
        assert len(keys) == 150
    frames = decode_rgba(out)
    for index in (0, 15, 31, 59, 60, 61, 149):
        expected = still_rgba(render_still(p, index, W, H))
        assert psnr(frames[index], expected) >= PSNR_FLOOR[codec], index


def gif_frames(path: Path) -> tuple[Image.Image, list[np.ndarray], list[int]]:
    image = Image.open(path)
    frames, delays = [], []
    for n in range(image.n_frames):
        image.seek(n)
        frames.append(np.asarray(image.convert("RGBA")))
        delays.append(image.info["duration"])
    return image, frames, delays


def test_gif_loops_with_a_transparent_index_and_one_frame_per_run(tmp_path: Path) -> None:
    p = props(text="GIF ✓", color="#00FF80", font_size=96, duration_in_frames=60)
    out = tmp_path / "clip.gif"
    render_video(p, out, width=320, height=180, codec="gif")
    raw = out.read_bytes()
    assert raw[:6] == b"GIF89a" and b"NETSCAPE2.0\x03\x01\x00\x00" in raw  # loops forever
    image, frames, delays = gif_frames(out)
    assert image.info.get("loop") == 0
    controls = [raw[i + 3] for i in range(len(raw) - 4) if raw[i : i + 3] == b"\x21\xf9\x04"]
    assert controls and all(flags & 1 for flags in controls)  # every frame: a transparent index
    assert len(frames) <= 31  # blank, 29 fade steps, then one frame for the held picture
    assert sum(delays) == 2000  # 60 frames at 30 fps, exactly
    start = 0
    for frame, delay in zip(frames, delays, strict=True):
        index = round(start * 30 / 1000)
        expected = still_rgba(render_still(p, index, 320, 180))
        assert (frame[..., 3][expected[..., 3] == 0] == 0).all()
        opaque = expected[..., 3] == 255
        assert (frame[..., 3][opaque] == 255).all()
        if opaque.any():
            assert np.abs(frame[opaque][:, :3].astype(int) - (0, 255, 128)).max() <= 1
        start += delay


def test_gif_over_a_background_uses_the_exact_ramp(tmp_path: Path) -> None:
    p = props(style="scale", background_color="#102030", color="#FFCC00", duration_in_frames=30)
    out = tmp_path / "clip.gif"
    render_video(p, out, width=320, height=180, codec="gif")
    _, frames, delays = gif_frames(out)
    assert sum(delays) == 1000
    last = still_rgba(render_still(p, 29, 320, 180))
    assert psnr(frames[-1], last) > 40


def test_prores_segments_join_by_stream_copy_and_vp9_is_rendered_whole(tmp_path: Path) -> None:
    p = props(style="typewriter", text="joined", duration_in_frames=60)
    parts = [tmp_path / "a.mov", tmp_path / "b.mov"]
    render_chunk(p, 0, 30, parts[0], width=320, height=180, codec="prores")
    render_chunk(p, 30, 60, parts[1], width=320, height=180, codec="prores")
    out = join_segments(parts, tmp_path / "whole.mov", fps=30, codec="prores")
    assert int(ffprobe(out)["nb_read_frames"]) == 60
    frames = decode_rgba(out)
    for index in (0, 29, 30, 59):
        assert psnr(frames[index], still_rgba(render_still(p, index, 320, 180))) > 40
    with pytest.raises(ValueError, match="render it whole"):
        join_segments(parts, tmp_path / "x.webm", fps=30, codec="vp9")
    with pytest.raises(CapError):
        render_chunk(p, 0, 30, tmp_path / "part.webm", width=320, height=180, codec="vp9")
    whole = tmp_path / "chunked.webm"
    render_video(p, whole, width=320, height=180, codec="vp9", chunk_size=20)
    assert int(ffprobe(whole)["nb_read_frames"]) == 60


def test_the_poster_is_the_last_frame_with_alpha_kept() -> None:
    p = props(text="Poster", duration_in_frames=45)
    poster = render_poster(p, 640, 360)
    assert poster == render_still(p, 44, 640, 360)
    image = Image.open(io.BytesIO(poster))
    assert image.mode == "RGBA" and image.size == (640, 360)
    alpha = np.asarray(image)[..., 3]
    assert alpha[0, 0] == 0 and alpha.max() == 255
    assert render_poster(p, 320, 180, frame=0) == render_still(p, 0, 320, 180)
    opaque = Image.open(io.BytesIO(render_poster(props(background_color="#000000"), 320, 180)))
    assert opaque.mode == "RGB"


def test_a_transparent_vp9_with_repeats_plays_to_the_end_in_chromium(tmp_path: Path) -> None:
    p = props(style="fade-in", text="Plays", color="#00FF00", duration_in_frames=60)
    out = tmp_path / "alpha.webm"
    render_video(p, out, width=640, height=360, codec="vp9")
    played = play_in_chromium(out)
    assert played["ended"] and played["duration"] == pytest.approx(2.0, abs=0.05)
    assert (played["width"], played["height"]) == (640, 360)
    assert played["lit"] > 100  # the text is drawn on the last frame


@pytest.mark.parametrize("background", [None, "#102030"])
def test_gif_with_colour_glyphs_is_quantised_and_keeps_its_timing(
    tmp_path: Path, background: str | None
) -> None:
    p = props(text="Party 🎉", duration_in_frames=30, background_color=background)
    out = tmp_path / "emoji.gif"
    render_video(p, out, width=320, height=180, codec="gif")
    _, frames, delays = gif_frames(out)
    assert sum(delays) == 1000
    last = still_rgba(render_still(p, 29, 320, 180))
    if background is None:
        assert (frames[-1][..., 3][last[..., 3] == 0] == 0).all()
    assert psnr(premultiplied(frames[-1]), premultiplied(last)) > 25
