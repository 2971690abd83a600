"""VP9 WebM and ProRes 4444 MOV from RGBA pictures, each distinct picture encoded once.

The pictures come as composited RGB(A) arrays (the still path's), converted once each with a
cached swscale context to the format's BT.709 limited-range YUV (with alpha when the
background is transparent). Repeats are not encoded:

* ProRes is intra-only, so identical pictures give identical packets: the packet is written
  again with the next timestamps.
* VP9 repeats are one-byte ``show_existing_frame`` packets (:mod:`renderlab.render.vp9`);
  keyframes are forced every 2 s of output (:class:`~renderlab.render.gop.KeyframeClock`).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Final, Literal, cast

import av
import numpy as np
from av.video.frame import PictureType
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter
from av.video.stream import VideoStream

from renderlab.render import vp9
from renderlab.render.encode import FrameMuxer, ProgressCallback
from renderlab.render.formats import OutputFormat
from renderlab.render.gop import KeyframeClock

_BT709 = 1
_SIDE: Final[Literal["matroska_block_additional"]] = "matroska_block_additional"


def _encoder_options(fmt: OutputFormat) -> dict[str, object]:
    if fmt.codec == "vp9":
        return {
            "deadline": "realtime",  # "good" costs 5-10x more per picture here
            "cpu-used": "8",
            "row-mt": "1",
            "lag-in-frames": "0",  # one packet per picture, in order, shown
            "auto-alt-ref": "0",  # no hidden frames: every packet names its slot
            # Lossless: flat text pictures cost about what crf 28 costs here (0.9 vs 0.7 MB
            # for a 1080p fade-in, no slower), and only lossless keeps the alpha of the
            # background exactly 0: lossy alpha planes come back with 1s in flat blocks.
            "lossless": "1",
            "g": "100000",  # keyframes are placed by output time (KeyframeClock)
        }
    return {"profile": "4444", "vendor": "apl0", "bits_per_mb": "8000"}


class RgbaVideoWriter(FrameMuxer):
    """Writes ``total`` frames, given as RGB(A) pictures with repeat counts, to ``path``."""

    def __init__(
        self,
        path: Path,
        fmt: OutputFormat,
        *,
        width: int,
        height: int,
        fps: int,
        total: int,
        transparent: bool,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.path, self.fmt, self.total = path, fmt, total
        self.on_progress = on_progress
        self.pix_fmt = fmt.pixel_format(transparent)
        self._time_base = Fraction(1, fps)
        self._clock = KeyframeClock(fps)
        self._reformatter = VideoReformatter()
        self._container = av.open(str(path), "w", format=fmt.container)
        try:
            # A video encoder's name always gives a video stream (PyAV types it by literal).
            stream = cast(VideoStream, self._container.add_stream(fmt.encoder, rate=fps))
            stream.width, stream.height, stream.pix_fmt = width, height, self.pix_fmt
            ctx = stream.codec_context
            ctx.color_primaries = ctx.color_trc = ctx.colorspace = _BT709
            ctx.color_range = 1
            stream.options = _encoder_options(fmt)
            ctx.open()
            self._stream = stream
        except BaseException:
            self._container.close()
            raise
        self._sent = self._written = self._reported = 0

    def write(self, rgba: np.ndarray, count: int) -> None:
        """Show the picture ``rgba`` ((h, w, 3 or 4) uint8) for ``count`` frames."""
        if count < 1:
            raise ValueError("a picture is shown for at least one frame")
        frame = self._convert(rgba)
        pieces = [(count, False)] if self.fmt.codec == "prores" else self._clock.split(count)
        for shown, key in pieces:
            frame.pts = self._sent
            frame.time_base = self._time_base
            frame.pict_type = PictureType.I if key else PictureType.NONE
            self._sent += 1
            packets = self._stream.encode(frame)
            if len(packets) != 1:
                raise RuntimeError(f"{self.fmt.encoder} returned {len(packets)} packets")
            self._emit_run(packets[0], shown, frame)

    def close(self) -> None:
        for packet in self._stream.encode(None):
            raise RuntimeError(f"{self.fmt.encoder} held back a packet ({packet.size} bytes)")
        self._finish()

    def _convert(self, rgba: np.ndarray) -> av.VideoFrame:
        source = av.VideoFrame.from_ndarray(
            np.ascontiguousarray(rgba), format="rgba" if rgba.shape[2] == 4 else "rgb24"
        )
        frame = self._reformatter.reformat(
            source,
            format=self.pix_fmt,
            src_colorspace=Colorspace.ITU709,
            dst_colorspace=Colorspace.ITU709,
            src_color_range=ColorRange.JPEG,
            dst_color_range=ColorRange.MPEG,
        )
        frame.colorspace, frame.color_range = _BT709, 1
        return frame

    def _emit_run(self, packet: av.Packet, count: int, frame: av.VideoFrame) -> None:
        keyframe = packet.is_keyframe
        repeat = self._repeat_of(packet) if count > 1 else None
        self._mux_frame(packet, keyframe)  # muxing empties the packet: repeats are made before
        for _ in range(count - 1):
            if repeat is None:  # a frame VP9 did not store: encode the repeat after all
                frame.pts = self._sent
                frame.pict_type = PictureType.NONE
                self._sent += 1
                (again,) = self._stream.encode(frame)
                self._mux_frame(again, again.is_keyframe)
            else:
                self._mux_frame(repeat(), keyframe and self.fmt.codec == "prores")

    def _repeat_of(self, packet: av.Packet) -> Callable[[], av.Packet] | None:
        """A maker of packets that show ``packet``'s picture again, or None if there is none."""
        data = bytes(packet)
        if self.fmt.codec == "prores":
            return lambda: av.Packet(data)
        slot = vp9.stored_slot(data)
        if slot is None:
            return None
        body = vp9.show_existing(data, slot)
        if not any(side.data_type == _SIDE for side in packet.iter_sidedata()):
            return lambda: av.Packet(body)
        side = packet.get_sidedata(_SIDE)  # a copy, rewritten in place (same length)
        alpha = vp9.alpha_repeat(bytes(memoryview(side)))
        if alpha is None:
            return None
        side.update(alpha)

        def make() -> av.Packet:
            repeat = av.Packet(body)
            repeat.set_sidedata(side)
            return repeat

        return make
