"""x264's settings for renderlab's pictures: time, size and quality, side by side in one run.

For each style (1920x1080, 600 frames, the bench texts), ``render_chunk`` with renderlab's
``X264_PARAMS`` and with the same minus one change (default: ``subme=0``, i.e. x264's half-pixel
motion search back), best of ``--repeat`` each; bytes of the file; luma PSNR of every decoded
frame against the picture that was drawn for it (mean and worst frame).

With ``--heights`` it prints instead what x264 costs a picture against the picture's height at
1920 wide (flat background, one moving box): the cost is per macroblock, text or not.

    python bench/x264.py [--repeat 3] [--without subme=0]
    python bench/x264.py --heights
    python bench/x264.py --flat     # does x264 reconstruct flat margins exactly, per crf?
    python bench/x264.py --band     # the band of rows (render.band) against whole pictures
    python bench/x264.py --fallbacks [--crf 18] [--margin 1]   # bands that gave way, of 540

``--fallbacks`` renders a grid of props (four styles, five sizes from 24 to 200 px, three
colours, three backgrounds, three texts, one of them two lines; 45 frames at 1920x1080) and
counts the renders whose band gave way to whole pictures (each such segment is encoded twice).
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import av
import numpy as np

import renderlab.render.encode as encode
from renderlab.compositions.props import TextAnimationProps
from renderlab.render.chunks import picture_runs, render_chunk
from renderlab.render.compose import YuvCanvas
from renderlab.render.frames import FramePainter

TYPEWRITER = (
    "The quick brown fox jumps over the lazy dog while the render pipeline keeps up with it"
    ".............."
)
STYLES = {
    "fade-in": "Hello renderlab",
    "slide-up": "Hello renderlab",
    "scale": "Hello renderlab",
    "typewriter": TYPEWRITER,
}


def _props(style: str) -> TextAnimationProps:
    return TextAnimationProps.model_validate(
        {"text": STYLES[style], "style": style, "font_size": 72, "color": "#FFFFFF",
         "duration_in_frames": 600}
    )  # fmt: skip


def _drawn_luma(props: TextAnimationProps) -> list[np.ndarray]:
    painter = FramePainter(props, 1920, 1080)
    canvas = YuvCanvas(1920, 1080, painter.background, painter.colour)
    frames: list[np.ndarray] = []
    for key, count in picture_runs(painter, 0, props.duration_in_frames):
        canvas.paint(painter.tile(key), key.opacity)
        frames += [canvas.buffer[:1080].copy()] * count
    return frames


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 99.0 if mse == 0 else 10 * float(np.log10(255**2 / mse))


def _measure(props: TextAnimationProps, params: str, out: Path, repeat: int) -> tuple:
    encode.X264_PARAMS = params
    best = min(_timed_render(props, out) for _ in range(repeat))
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray()[:1080] for f in container.decode(video=0)]
    return best, out.stat().st_size, decoded


def _timed_render(props: TextAnimationProps, out: Path) -> float:
    started = time.perf_counter()
    render_chunk(props, 0, props.duration_in_frames, out, width=1920, height=1080)
    return time.perf_counter() - started


def compare(repeat: int, without: str) -> None:
    ours = encode.X264_PARAMS
    other = ":".join(p for p in ours.split(":") if p != without)
    print(f"renderlab: {ours}\nreference: {other}\n")
    header = ("style", "settings", "render", "bytes", "PSNR mean", "worst")
    print("{:11s} {:9s} {:>8s} {:>8s} {:>10s} {:>6s}".format(*header))
    with tempfile.TemporaryDirectory() as work:
        for style in STYLES:
            props = _props(style)
            drawn = _drawn_luma(props)
            rows = {}
            for name, params in (("reference", other), ("renderlab", ours)):
                seconds, size, decoded = _measure(props, params, Path(work) / "x.mp4", repeat)
                scores = [_psnr(d, e) for d, e in zip(decoded, drawn, strict=True)]
                rows[name] = seconds
                print(
                    f"{style:11s} {name:9s} {seconds:7.3f}s {size:8d} {np.mean(scores):9.1f}"
                    f"  {min(scores):5.1f}"
                )
            ratio = rows["renderlab"] / rows["reference"]
            print(f"{style:11s} renderlab / reference: {ratio:.2f}\n")
    encode.X264_PARAMS = ours


def band(repeat: int) -> None:
    """Each style with the band of rows (renderlab's) and with whole pictures, in one run."""
    import renderlab.render.chunks as chunks

    planned = chunks.plan_band
    print("{:11s} {:9s} {:>8s} {:>8s} {:>10s} {:>6s}".format(
        "style", "pictures", "render", "bytes", "PSNR mean", "worst"))  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        for style in STYLES:
            props = _props(style)
            drawn = _drawn_luma(props)
            rows = {}
            for name, plan in (("whole", lambda *_: None), ("band", planned)):
                chunks.plan_band = plan  # type: ignore[assignment]
                seconds, size, decoded = _measure(
                    props, encode.X264_PARAMS, Path(work) / "b.mp4", repeat
                )
                scores = [_psnr(d, e) for d, e in zip(decoded, drawn, strict=True)]
                rows[name] = seconds
                print(f"{style:11s} {name:9s} {seconds:7.3f}s {size:8d} {np.mean(scores):9.1f}"
                      f"  {min(scores):5.1f}")  # fmt: skip
            print(f"{style:11s} band / whole: {rows['band'] / rows['whole']:.2f}\n")
    chunks.plan_band = planned


def heights() -> None:
    threads = encode.encoder_threads()
    print(f"x264 veryfast, {encode.X264_PARAMS}, {threads} frame threads, 60 pictures each")
    for height in (1088, 544, 272, 128):
        plane = np.full((height * 3 // 2, 1920), 16, np.uint8)
        plane[height:] = 128
        with tempfile.TemporaryDirectory() as work:
            container = av.open(str(Path(work) / "h.mp4"), "w", format="mp4")
            stream = container.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = 1920, height, "yuv420p"
            stream.codec_context.thread_type = "FRAME"
            stream.codec_context.thread_count = threads
            stream.options = {"preset": "veryfast", "crf": "18", "x264-params": encode.X264_PARAMS}
            frame = av.VideoFrame(1920, height, "yuv420p")
            started = time.perf_counter()
            for i in range(60):
                plane[height // 2 - 30 : height // 2 + 30, 600:1300] = 16 + (i % 30) * 7
                encode.fill_yuv420p(frame, plane)
                frame.pts = i
                stream.encode(frame)
            stream.encode(None)
            per_picture = (time.perf_counter() - started) / 60
            container.close()
        print(f"1920x{height:<5d} {per_picture * 1000:6.2f} ms a picture")


FLAT_COLOURS = ((16, 128, 128), (235, 128, 128), (100, 90, 200), (17, 129, 127), (60, 200, 50),
                (180, 110, 140), (33, 128, 128), (126, 128, 128))  # fmt: skip


def flat_margins() -> None:
    """Whether x264 reconstructs a band's flat margin rows exactly (what a band writer needs):
    a 1920x192 picture of one colour with a noisy box in its middle 64 rows, 3 frames."""
    width, height = 1920, 192
    rng = np.random.default_rng(0)
    for crf in (18, 30, 40):
        inexact = []
        for y, u, v in FLAT_COLOURS:
            plane = np.empty((height * 3 // 2, width), np.uint8)
            plane[:height], quarter = y, (width // 2) * (height // 2)
            plane.reshape(-1)[width * height : width * height + quarter] = u
            plane.reshape(-1)[width * height + quarter :] = v
            plane[64:128, 500:1400] = rng.integers(16, 235, (64, 900))
            with tempfile.TemporaryDirectory() as work:
                out = Path(work) / "flat.mp4"
                container = av.open(str(out), "w", format="mp4")
                stream = container.add_stream("libx264", rate=30)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.options = {
                    "preset": "veryfast", "crf": str(crf), "x264-params": encode.X264_PARAMS
                }  # fmt: skip
                frame = av.VideoFrame(width, height, "yuv420p")
                for i in range(3):
                    encode.fill_yuv420p(frame, plane)
                    frame.pts = i
                    for packet in stream.encode(frame):
                        container.mux(packet)
                for packet in stream.encode(None):
                    container.mux(packet)
                container.close()
                with av.open(str(out)) as decoded:
                    lumas = [f.to_ndarray()[:height] for f in decoded.decode(video=0)]
            if any((luma[:32] != y).any() or (luma[-32:] != y).any() for luma in lumas):
                inexact.append((y, u, v))
        print(f"crf {crf}: margins exact for {len(FLAT_COLOURS) - len(inexact)} of "
              f"{len(FLAT_COLOURS)} colours; inexact: {inexact or 'none'}")  # fmt: skip


def fallbacks(crf: int, margin: int | None) -> None:
    import renderlab.render.band as band_module
    import renderlab.render.chunks as chunks

    if margin is not None:
        band_module.MARGIN_MBS = margin
    calls: list[bool] = []  # per SegmentWriter made: was it given a band?
    made = chunks.SegmentWriter

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("band") is not None)
        return made(*args, **kwargs)  # type: ignore[arg-type]

    chunks.SegmentWriter = counting  # type: ignore[assignment,misc]
    grid = itertools.product(
        ["fade-in", "slide-up", "scale", "typewriter"],
        [24, 48, 96, 160, 200],
        ["#FFFFFF", "#FF0000", "#10E0A0"],
        [None, "#203040", "#FFFFFF"],
        ["Hello world", "Ünïcødé 👋 שלום", "Tall gjpqy ÅÉ\nsecond line"],
    )
    renders = fell_back = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        for style, size, colour, background, text in grid:
            p = TextAnimationProps(
                text=text, style=style, font_size=size, color=colour,
                background_color=background, duration_in_frames=45,
            )  # fmt: skip
            calls.clear()
            render_chunk(p, 0, 45, Path(work) / "s.mp4", width=1920, height=1080, crf=crf)
            renders += 1
            fell_back += calls[:1] == [True] and len(calls) > 1
    seconds = time.perf_counter() - started
    print(f"margin {band_module.MARGIN_MBS}, crf {crf}: {fell_back} of {renders} renders fell back "
          f"to whole pictures ({seconds:.1f} s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--without", default="subme=0", help="the setting to compare without")
    parser.add_argument("--heights", action="store_true")
    parser.add_argument("--flat", action="store_true", help="are flat margins exact?")
    parser.add_argument("--band", action="store_true", help="band of rows vs whole pictures")
    parser.add_argument("--fallbacks", action="store_true", help="bands that gave way, of 540")
    parser.add_argument("--crf", type=int, default=encode.DEFAULT_CRF)
    parser.add_argument("--margin", type=int, help="the band's margin (default: the module's)")
    args = parser.parse_args()
    if args.fallbacks:
        fallbacks(args.crf, args.margin)
    elif args.band:
        band(args.repeat)
    elif args.flat:
        flat_margins()
    elif args.heights:
        heights()
    else:
        compare(args.repeat, args.without)


if __name__ == "__main__":
    main()
