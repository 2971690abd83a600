"""H.264 encoding through PyAV's libx264, one picture per run of identical frames.

:class:`SegmentWriter` takes pictures with a repeat count. Each picture is encoded once; the
repeats are all-skip P pictures written by :mod:`h264` (a few dozen bytes, no encoder time),
and the output is still an ordinary constant-frame-rate stream with one packet per frame, every
frame present, timestamps 0, 1, 2 ... in 1/fps. A segment is a ``+faststart`` MP4 that starts
with an IDR picture, so segments can be joined by stream copy.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.frame import PictureType

from renderlab.render.band import BandEncoder
from renderlab.render.gop import KeyframeClock
from renderlab.render.h264 import StreamRewriter
from renderlab.render.planes import copy_rows

# Encoder settings (not user-facing limits). veryfast is the comparison's preset; bframes=0 is
# what lets repeats be written as skip pictures (x264 then uses pic_order_cnt_type 2, and no
# reordering), and ref=1 is what makes them exact with every preset (a skip picture copies the
# most recent reference; x264 must not predict from an older one it thinks is different).
# Keyframes are placed here (keyint counts encoded pictures only, not the repeats), so x264's
# own is off. FRAME threading, one thread per core, is 10-20 % faster than slice threading
# here and 20 % faster than x264's own 1.5 threads per core (on 2 cores: 3.4 ms a 1080p
# picture against 4.2 ms; one thread 5.6 ms).
# rc-lookahead=1: x264's lookahead and macroblock tree assume each picture is shown for one
# frame and the next follows; here a picture is held for its repeats, so the model is wrong
# and its cost is not: one picture of lookahead encodes the 1080p fade-in in 0.48 s instead
# of 0.78 s and the typewriter in 1.36 s instead of 1.58 s, files 8-11 % smaller, luma PSNR
# 55.5 dB instead of 57.4 dB and 51.1 instead of 52.6 (the worst frames unchanged; all far
# above what a viewer sees at crf 18). subme=0 (whole-pixel motion search): x264 otherwise
# interpolates every reference picture to half pixels, a fixed cost per 1080p picture as large
# as the rest of the encoding of these pictures of flat text; without it each style encodes
# 26-44 % faster at the same PSNR (to 0.1 dB), files 7-19 % larger. no-deblock: the loop
# filter softens text's edges, which are real ones: PSNR +0.9 to +2.7 dB at the same size and
# time. stitchable=1: parameter sets that do not depend on the content, so that the band of
# rows (render.band) and the whole picture differ only in size. docs/performance.md has the
# measurements (bench/x264.py).
DEFAULT_CRF = 18  # Remotion's default for H.264
MIN_CRF, MAX_CRF = 1, 51  # crf 0 is lossless High 4:4:4 Predictive, which many decoders refuse
DEFAULT_PRESET = "veryfast"
X264_PARAMS = "bframes=0:ref=1:keyint=infinite:rc-lookahead=1:subme=0:no-deblock=1:stitchable=1"
PROGRESS_EVERY = 5  # frames between progress callbacks (and always at the end)

ProgressCallback = Callable[[int, int], None]

# BT.709, limited range: what the YUV is written in (render.compose), tagged in the stream.
_COLOR_BT709 = 1
_RANGE_MPEG = 1


def encoder_threads() -> int:
    """x264's frame threads: one per core this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 0  # 0: x264 chooses


def fill_yuv420p(
    frame: av.VideoFrame, buffer: np.ndarray, rows: tuple[int, int] | None = None
) -> None:
    """Copy the I420 ``buffer`` ((h * 3/2, w)) into ``frame``; with ``rows`` (luma rows, end
    exclusive) only those and their chroma rows: the rest of ``frame`` already holds them."""
    copy_rows(frame, buffer, frame.width, frame.height, rows or (0, frame.height))


class FrameMuxer:
    """Muxes encoded packets one output frame each, in order, and reports progress every
    ``PROGRESS_EVERY`` frames and at the end: the writing half every video writer shares."""

    _container: Any
    _stream: Any
    _time_base: Fraction
    _written: int
    _reported: int
    path: Path
    total: int
    on_progress: ProgressCallback | None

    def _finish(self) -> None:
        """Close the file once the encoder is flushed, if it holds every frame."""
        if self._written != self.total:
            raise RuntimeError(f"wrote {self._written} frames, expected {self.total}")
        self._container.close()

    def abort(self) -> None:
        """Close without finishing and delete the partial file."""
        with contextlib.suppress(Exception):
            self._container.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _mux_frame(self, packet: av.Packet, keyframe: bool) -> None:
        packet.stream = self._stream
        packet.time_base = self._time_base
        packet.pts = packet.dts = self._written
        packet.duration = 1
        packet.is_keyframe = keyframe
        self._container.mux(packet)
        self._written += 1
        if self.on_progress is not None and (
            self._written - self._reported >= PROGRESS_EVERY or self._written == self.total
        ):
            self._reported = self._written
            self.on_progress(self._written, self.total)


def _x264_stream(
    container: Any, width: int, height: int, fps: int, options: dict[str, str], threads: int
) -> Any:
    """The output's H.264 stream, its encoder open (BT.709, limited range, frame threads)."""
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    ctx = stream.codec_context
    ctx.thread_type = "FRAME"
    ctx.thread_count = threads
    ctx.color_primaries = _COLOR_BT709
    ctx.color_trc = _COLOR_BT709
    ctx.colorspace = _COLOR_BT709
    ctx.color_range = _RANGE_MPEG
    stream.options = options
    ctx.open()
    return stream


class SegmentWriter(FrameMuxer):
    """Writes ``total`` frames, given as pictures with repeat counts, to an MP4 file."""

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        fps: int,
        total: int,
        crf: int = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
        on_progress: ProgressCallback | None = None,
        band: tuple[tuple[int, int], tuple[int, int, int]] | None = None,
    ) -> None:
        """``band``: (macroblock rows, background Y'CbCr) to give x264 only those rows of each
        picture (:mod:`renderlab.render.band`; :class:`~renderlab.render.band.BandUnavailable`
        from here or from any later call means: write this segment without one)."""
        self.path = path
        self.total = total
        self._clock = KeyframeClock(fps)
        self.on_progress = on_progress
        self._time_base = Fraction(1, fps)
        self._container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        options = {
            "preset": preset,
            "crf": str(crf),
            "forced-idr": "1",
            "x264-params": X264_PARAMS,
        }
        try:
            # With a band, this encoder only gives the stream its parameter sets (the same
            # whatever its thread count): no thread pool for it.
            threads = encoder_threads() if band is None else 1
            self._stream = _x264_stream(self._container, width, height, fps, options, threads)
            extradata = bytes(self._stream.codec_context.extradata or b"")
            self._rewriter = StreamRewriter(extradata)
            self._band: BandEncoder | None = None
            if band is not None:
                rows, background = band
                self._band = BandEncoder(
                    width, height, rows, background, options, encoder_threads(), extradata,
                    path.parent, fps,
                )  # fmt: skip
        except BaseException:
            self._container.close()
            raise
        # Per picture inside the encoder: the frames it is shown for, then the frames each later
        # copy of its keyframe is shown for (see write()).
        self._pending: deque[list[int]] = deque()
        self._held_is_key = False  # the picture held was last given to the encoder as keyframe
        self._key: bytes | None = None  # that keyframe, once out of the encoder
        self._sent = 0
        self._written = 0
        self._reported = 0
        self._frame = av.VideoFrame(width, height, "yuv420p")
        self._frame.color_range = _RANGE_MPEG
        self._frame.colorspace = _COLOR_BT709
        self._frame.time_base = self._time_base

    def write(self, buffer: np.ndarray, count: int, rows: tuple[int, int] | None = None) -> None:
        """Show the yuv420p picture in ``buffer`` ((h * 3/2, w) uint8) for ``count`` frames.

        ``rows``: the luma rows (end exclusive) where it differs from the previous picture
        written, if known; only they are copied (a typewriter's text is a quarter of the
        frame's rows, and copying whole 1080p pictures was a sixth of the encoding thread).

        A run crossing a 2-second boundary starts a new GOP there with an IDR picture, so the
        file is seekable every 2 s. The picture is encoded as that IDR once; at later
        boundaries of the same run the IDR's bytes are written again (an IDR refers to no
        other picture, and the decoder's reference after it is what the encoder's still is).
        libx264 copies the picture when it is sent, so the caller may reuse ``buffer``.
        """
        if count < 1:
            raise ValueError("a picture is shown for at least one frame")
        if self._band is None:
            fill_yuv420p(self._frame, buffer, rows if self._sent else None)
        else:
            self._band.fill(buffer, rows, whole=not self._sent)
        self._held_is_key = False
        self._key = None
        for shown, idr in self._clock.split(count):
            if idr and self._held_is_key:
                self._key_again(shown)
            else:
                self._send(shown, idr)

    def _send(self, count: int, idr: bool) -> None:
        self._held_is_key = idr or self._sent == 0  # a stream's first picture is an IDR
        self._frame.pts = self._sent  # the encoder sees consecutive frames; output times differ
        self._frame.pict_type = PictureType.I if idr else PictureType.NONE
        self._sent += 1
        self._pending.append([count])
        if self._band is not None:
            self._mux(self._band.encode(idr))
        else:
            self._mux([(bytes(p), p.is_keyframe) for p in self._stream.encode(self._frame)])

    def _key_again(self, count: int) -> None:
        if self._pending:  # the keyframe is the last picture sent, still inside the encoder
            self._pending[-1].append(count)
        elif self._key is not None:
            self._show(self._key, True, count)
        else:  # the encoder did not mark it as a keyframe: ask for one again
            self._send(count, True)

    def close(self) -> None:
        """Flush the encoder and finish the file (faststart moves the index to the front)."""
        if self._band is not None:
            self._mux(self._band.flush())
            self._band.close()
        else:
            self._mux([(bytes(p), p.is_keyframe) for p in self._stream.encode(None)])
        self._finish()

    def abort(self) -> None:
        if self._band is not None:
            self._band.close()
        super().abort()

    def _mux(self, units: list[tuple[bytes, bool]]) -> None:
        """Each access unit from the encoder (Annex B, keyframe or not), with its repeats."""
        for data, keyframe in units:
            first, *copies = self._pending.popleft()
            self._show(data, keyframe, first)
            for count in copies:
                self._show(data, True, count)
            if keyframe and not self._pending and self._held_is_key:
                self._key = data

    def _show(self, data: bytes, keyframe: bool, count: int) -> None:
        """An encoded access unit (renumbered to follow what came before), then repeats."""
        self._emit(self._rewriter.encoded(data), keyframe)
        for _ in range(count - 1):
            self._emit(self._rewriter.repeat(), False)

    def _emit(self, data: bytes, keyframe: bool) -> None:
        self._mux_frame(av.Packet(data), keyframe)
