"""Helpers for the renderer tests: decode videos, probe them, and predict frames from stills."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from renderlab.compositions.props import TextAnimationProps
from renderlab.render.compose import rgb_to_yuv


def props(**overrides: Any) -> TextAnimationProps:
    values: dict[str, Any] = {
        "text": "Hello renderlab",
        "style": "fade-in",
        "color": "#FFFFFF",
        "font_size": 64,
        "duration_in_frames": 60,
    }
    values.update(overrides)
    return TextAnimationProps(**values)


def decode_luma(path: Path) -> list[np.ndarray]:
    """Every decoded frame's Y plane, in order."""
    planes = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            array = frame.to_ndarray(format="yuv420p")
            planes.append(array[: frame.height].copy())
    return planes


def packet_sizes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [p.size for p in container.demux(stream) if p.size]


def still_luma(png: bytes) -> np.ndarray:
    """The Y plane a video frame should decode to, from a still (transparent -> black)."""
    image = np.asarray(Image.open(io.BytesIO(png)), dtype=np.float32)
    rgb = image[..., :3] * (image[..., 3:4] / 255.0) if image.shape[2] == 4 else image
    return np.rint(rgb_to_yuv(rgb)[..., 0]).astype(np.uint8)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's view of the first video stream, frames counted by decoding."""
    exe = shutil.which("ffprobe")
    if exe is None:
        pytest.fail("ffprobe is not installed (apt-get install ffmpeg); the renderer tests need it")
    out = subprocess.run(
        [
            exe,
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    data = json.loads(out)
    stream = data["streams"][0]
    stream["format"] = data["format"]
    return stream


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types, in file order (faststart puts moov before mdat)."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        boxes.append(kind)
        if size < 8:
            break
        offset += size
    return boxes


def alpha(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.mode == "RGBA"
    return np.asarray(image)[..., 3]


def chromium() -> str:
    """Debian's chromium (or RENDERLAB_CHROMIUM); missing fails the test, as CI installs it."""
    path = os.environ.get("RENDERLAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("chromium is not installed (apt-get install chromium); a browser test needs it")
    return path


_PLAY = """async (src) => {
  const v = document.createElement('video');
  v.muted = true; v.src = src; document.body.appendChild(v);
  await new Promise((ok, bad) => {
    v.oncanplay = ok;
    v.onerror = () => bad(String(v.error && v.error.message));
  });
  v.playbackRate = 4; await v.play();
  await new Promise(ok => { if (v.ended) ok(); else v.onended = ok; });
  const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
  const ctx = c.getContext('2d'); ctx.drawImage(v, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data; let lit = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 1] > 128) lit++;
  return {duration: v.duration, width: v.videoWidth, height: v.videoHeight, ended: v.ended,
          frames: v.getVideoPlaybackQuality().totalVideoFrames, lit: lit};
}"""


def play_in_chromium(video: Path) -> dict[str, Any]:
    """Play ``video`` to its end in headless chromium (served over HTTP like a download)."""
    import functools
    import http.server
    import threading

    from playwright.sync_api import sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(video.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    (video.parent / "index.html").write_text("<!doctype html><body></body>")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.goto(f"{base}/index.html")
                return page.evaluate(_PLAY, f"{base}/{video.name}")
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()


def decode_yuv(path: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every decoded yuv420p frame as its (Y, U, V) planes, in order."""
    planes = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            w, h = frame.width, frame.height
            flat = frame.to_ndarray(format="yuv420p").reshape(-1)
            q = (w // 2) * (h // 2)
            y = flat[: w * h].reshape(h, w)
            u = flat[w * h : w * h + q].reshape(h // 2, w // 2)
            v = flat[w * h + q : w * h + 2 * q].reshape(h // 2, w // 2)
            planes.append((y.copy(), u.copy(), v.copy()))
    return planes


def still_yuv(png: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (Y, U, V) planes a yuv420p frame should decode to, from a still (chroma 2x2 means)."""
    image = np.asarray(Image.open(io.BytesIO(png)), dtype=np.float32)
    rgb = image[..., :3] * (image[..., 3:4] / 255.0) if image.shape[2] == 4 else image
    yuv = rgb_to_yuv(rgb)
    h, w = yuv.shape[:2]
    quads = yuv.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    return tuple(np.rint(p).astype(np.uint8) for p in (yuv[..., 0], quads[..., 1], quads[..., 2]))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio of two same-shaped arrays, in dB (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def decode_rgba(path: Path, decoder: str | None = None) -> list[np.ndarray]:
    """Every frame as RGBA, decoded by ``decoder`` (e.g. ``libvpx-vp9``, which reads WebM's
    alpha channel; ffmpeg's own vp9 decoder ignores it) or the stream's default decoder."""
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if decoder is None:
            return [f.to_ndarray(format="rgba") for f in container.decode(stream)]
        context = av.CodecContext.create(decoder, "r")
        for packet in container.demux(stream):
            if packet.size:
                frames.extend(f.to_ndarray(format="rgba") for f in context.decode(packet))
        frames.extend(f.to_ndarray(format="rgba") for f in context.decode(None))
    return frames


def still_rgba(png: bytes) -> np.ndarray:
    """A still as RGBA (an opaque one gets alpha 255)."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def premultiplied(rgba: np.ndarray) -> np.ndarray:
    """RGB times alpha, with alpha: equal wherever two pictures look the same over anything."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.concatenate([rgba[..., :3] * a, rgba[..., 3:4].astype(np.float32)], axis=-1)
