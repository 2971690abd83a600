"""Renderer benchmark: each style at 1920x1080, 600 frames, against ffmpeg's own render.

The reference is ffmpeg's ``drawtext`` + libx264 at the same preset (``veryfast``) and CRF,
rendering an equivalent 600-frame fade-in, measured in the same run on the same machine. Each
renderlab render runs in a fresh process so its peak RSS is its own; its wall time is the
``render_video`` call (fonts, layout, encoding and muxing included; interpreter start-up not,
which the process column shows). Medians of ``--repeat`` runs.

``--codecs`` adds the per-codec table: a transparent 600-frame fade-in in vp9, prores and gif
(``CODEC_WIDTH`` x ``CODEC_HEIGHT``), each beside ffmpeg's equivalent in the same run:
drawtext on a transparent canvas + libvpx-vp9 with renderlab's settings (realtime, cpu-used 8,
lossless, yuva420p), + prores_ks profile 4444 (yuva444p10le), + palettegen/paletteuse GIF.

    python bench/render.py [--repeat 3] [--out DIR] [--codecs] [--codecs-only]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FRAMES = 600
WIDTH, HEIGHT = 1920, 1080
FONT_SIZE = 72
TEXT = "Hello from renderlab"
TYPEWRITER_TEXT = (
    "The quick brown fox jumps over the lazy dog while the render pipeline keeps up with it."
)[:100].ljust(100, ".")
TARGETS = {"fade-in": 0.25, "slide-up": 0.25, "scale": 0.25, "typewriter": 0.75}
STILL_TARGET_MS = 50.0
RSS_TARGET_MB = 300.0


def _props(style: str) -> dict[str, object]:
    return {
        "text": TYPEWRITER_TEXT if style == "typewriter" else TEXT,
        "style": style,
        "font_size": FONT_SIZE,
        "color": "#FFFFFF",
        "duration_in_frames": FRAMES,
    }


def _child(style: str, out: str) -> None:
    """Runs in a fresh interpreter: one render, its figures as JSON on stdout."""
    from renderlab.render import render_video

    started = time.perf_counter()
    result = render_video(_props(style), out, width=WIDTH, height=HEIGHT)
    wall = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "bytes": result.bytes, "rss_mb": rss}))


def _render_once(style: str, out: Path) -> dict[str, float]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", style, str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    figures["process"] = time.perf_counter() - started
    return figures


def _ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg_once(ffmpeg: str, out: Path, crf: int, preset: str) -> tuple[float, int]:
    from renderlab.render.fonts import resolve_family

    font = resolve_family("Inter").path.replace("\\", "/").replace(":", "\\:")
    text = TEXT.replace(":", "\\:").replace("'", "")
    draw = (
        f"drawtext=fontfile='{font}':text='{text}':fontsize={FONT_SIZE}:fontcolor=white"
        ":x=(w-text_w)/2:y=(h-text_h)/2:alpha='min(n/30\\,1)'"
    )
    command = [
        ffmpeg,
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"color=c=black:s={WIDTH}x{HEIGHT}:r=30",
        "-vf",
        draw,
        "-frames:v",
        str(FRAMES),
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        str(out),
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started, out.stat().st_size


CODEC_WIDTH, CODEC_HEIGHT = 960, 540
CODEC_FONT_SIZE = FONT_SIZE // 2
_FFMPEG_CODEC_ARGS = {
    "vp9": [
        "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1",
        "-lossless", "1", "-pix_fmt", "yuva420p",
    ],
    "prores": ["-c:v", "prores_ks", "-profile:v", "4444", "-pix_fmt", "yuva444p10le"],
    "gif": [],
}  # fmt: skip
_EXTENSIONS = {"vp9": ".webm", "prores": ".mov", "gif": ".gif"}


def _ffmpeg_codec_once(ffmpeg: str, codec: str, out: Path) -> tuple[float, int]:
    """ffmpeg's own transparent fade-in in ``codec``: (seconds, bytes)."""
    from renderlab.render.fonts import resolve_family

    font = resolve_family("Inter").path.replace("\\", "/").replace(":", "\\:")
    draw = (
        f"format=rgba,drawtext=fontfile='{font}':text='{TEXT}':fontsize={CODEC_FONT_SIZE}"
        ":fontcolor=white:x=(w-text_w)/2:y=(h-text_h)/2:alpha='min(n/30\\,1)'"
    )
    if codec == "gif":
        draw += ",split[a][b];[a]palettegen=reserve_transparent=1[p];[b][p]paletteuse"
    # A finite source: palettegen writes its palette only at the end of its input.
    source = f"color=c=black@0.0:s={CODEC_WIDTH}x{CODEC_HEIGHT}:r=30:d={FRAMES / 30}"
    command = [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", source]
    command += ["-filter_complex" if codec == "gif" else "-vf", draw]
    command += ["-frames:v", str(FRAMES), *_FFMPEG_CODEC_ARGS[codec], str(out)]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started, out.stat().st_size


def _codec_child(codec: str, out: str) -> None:
    """Runs in a fresh interpreter: one transparent render in ``codec``, figures as JSON."""
    from renderlab.render import render_video

    props = {**_props("fade-in"), "font_size": CODEC_FONT_SIZE}
    started = time.perf_counter()
    result = render_video(props, out, width=CODEC_WIDTH, height=CODEC_HEIGHT, codec=codec)
    wall = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "bytes": result.bytes, "rss_mb": rss}))


def _codec_table(ffmpeg: str, out_dir: Path, repeat: int, only: list[str] | None = None) -> None:
    print(
        f"\nper codec: transparent fade-in, {FRAMES} frames {CODEC_WIDTH}x{CODEC_HEIGHT}, "
        f"medians of {repeat}; ratio = renderlab / ffmpeg (lower is faster)"
    )
    print(
        f"{'codec':<7} {'renderlab s':>11} {'bytes':>9} {'ffmpeg s':>9} {'bytes':>9} {'ratio':>6}"
    )
    for codec, ext in _EXTENSIONS.items():
        if only and codec not in only:
            continue
        ours = []
        for _ in range(repeat):
            proc = subprocess.run(
                [sys.executable, __file__, "--codec-child", codec, str(out_dir / f"rl{ext}")],
                check=True,
                capture_output=True,
                text=True,
            )
            ours.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        theirs = [_ffmpeg_codec_once(ffmpeg, codec, out_dir / f"ff{ext}") for _ in range(repeat)]
        wall = statistics.median(r["wall"] for r in ours)
        ff_wall = statistics.median(t for t, _ in theirs)
        print(
            f"{codec:<7} {wall:11.2f} {int(ours[-1]['bytes']):9d} {ff_wall:9.2f} "
            f"{theirs[-1][1]:9d} {wall / ff_wall:6.3f}"
        )


def _stills(repeat: int) -> list[float]:
    from renderlab.render import render_still

    times = []
    for style in TARGETS:
        props = _props(style)
        render_still(props, 0)  # fonts loaded once per process, as in a server
        for frame in (0, 5, 12, 20, 29, 45, 100, 300, 599)[: max(3, 3 * repeat)]:
            started = time.perf_counter()
            render_still(props, frame)
            times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="keep the videos here")
    parser.add_argument("--codecs", action="store_true", help="add the per-codec table")
    parser.add_argument(
        "--codecs-only", nargs="*", default=None, help="only the per-codec table (these codecs)"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--codec-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child or args.codec_child:
        (_child if args.child else _codec_child)(*(args.child or args.codec_child))
        return

    from renderlab.render import DEFAULT_CRF, DEFAULT_PRESET

    out_dir = args.out or Path(tempfile.mkdtemp(prefix="renderlab-bench-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    ffmpeg = _ffmpeg()
    if args.codecs_only is not None:
        _codec_table(ffmpeg, out_dir, args.repeat, args.codecs_only)
        return
    ff_times, ff_bytes = [], 0
    for _ in range(args.repeat):
        seconds, ff_bytes = _ffmpeg_once(
            ffmpeg, out_dir / "ffmpeg-fade-in.mp4", DEFAULT_CRF, DEFAULT_PRESET
        )
        ff_times.append(seconds)
    reference = statistics.median(ff_times)
    print(
        f"reference: {ffmpeg} drawtext + libx264 -preset {DEFAULT_PRESET} -crf {DEFAULT_CRF}, "
        f"{FRAMES} frames {WIDTH}x{HEIGHT} fade-in: {reference:.2f} s, {ff_bytes} bytes"
    )
    header = f"{'style':<11} {'wall s':>7} {'proc s':>7} {'fps':>7} {'bytes':>9} {'RSS MB':>7}"
    print(header + f" {'ratio':>6} {'target':>6}  ok")
    for style, target in TARGETS.items():
        runs = [_render_once(style, out_dir / f"{style}.mp4") for _ in range(args.repeat)]
        wall = statistics.median(r["wall"] for r in runs)
        process = statistics.median(r["process"] for r in runs)
        rss = max(r["rss_mb"] for r in runs)
        ratio = wall / reference
        ok = ratio <= target and rss < RSS_TARGET_MB
        print(
            f"{style:<11} {wall:7.2f} {process:7.2f} {FRAMES / wall:7.0f} "
            f"{int(runs[-1]['bytes']):9d} {rss:7.0f} {ratio:6.3f} {target:6.2f}  "
            f"{'yes' if ok else 'NO'}"
        )
    stills = _stills(args.repeat)
    median = statistics.median(stills)
    print(
        f"PNG still 1920x1080: median {median:.1f} ms over {len(stills)} stills "
        f"(target {STILL_TARGET_MS:.0f} ms): {'yes' if median <= STILL_TARGET_MS else 'NO'}"
    )
    if args.codecs:
        _codec_table(ffmpeg, out_dir, args.repeat)
    if args.out is None:
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
