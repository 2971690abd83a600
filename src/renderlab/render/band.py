"""x264 given only the rows the text touches, the rest of each picture written around it.

x264's cost is per macroblock, text or not (``bench/x264.py --heights``: 3.3 ms a 1920x1088
picture, 0.64 ms at 128 rows), and most of a title's frame is flat background. A
:class:`BandEncoder` encodes the band of macroblock rows every picture's text lies in as a
picture of its own, and makes each access unit of the full picture from it: the band's slices
moved into place (``first_mb_in_slice``), above and below them either slices of the flat
background (keyframes; x264's, encoded once per band) or skipped macroblocks (P pictures).

The stream decodes to exactly what x264 reconstructed, because nothing decoded differs from
what x264 predicted from: slices do not predict from each other, deblocking is off
(``no-deblock``), and where a motion vector reaches past the band, x264 reads the band's edge
row repeated and the decoder the real rows outside, which are equal only if both are the flat
background. That holds for the outside (checked once, on the decoded flat slices) and, at the
default quality, for the band's edge rows: x264 writes its reconstruction of each band picture
(``dump-yuv``) and the edge rows are compared there as the render goes. Any picture that
breaks it (or whose text leaves the band) raises :class:`BandUnavailable`: the caller renders
whole pictures instead.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import replace
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np

from renderlab.render import diskcache
from renderlab.render.h264 import (
    NAL_IDR,
    NAL_PPS,
    NAL_SLICE,
    NAL_SPS,
    BitstreamError,
    Pps,
    SliceHeader,
    Sps,
    join_annexb,
    parse_pps,
    parse_sps,
    read_slice,
    skip_slice,
    split_annexb,
    write_slice,
)
from renderlab.render.planes import copy_rows, fill_flat, frame_planes

MB = 16
MARGIN_MBS = 1  # macroblock rows of background kept between the text and the band's edges
MAX_SHARE = 0.6  # a band of more of the picture's macroblock rows is not worth it
_FLAT_QP = "4"  # the flat slices: fine enough to be exact, few bytes whatever the quality
# What the flat slices need of x264's analysis, none of which changes the parameter sets: a
# flat picture is intra 16x16 throughout (6.6 -> 4.7 ms for a 1080p render's, a few bytes fewer).
_FLAT_PARAMS = ":analyse=none:trellis=0:aq-mode=0:psy=0"
BAND_MAX_CRF = 27
"""Above it, no band is tried: x264's band edges stop being exact. Over 144 renders (four
styles, three sizes, two colours, two backgrounds, three texts at 1080p) none fell back at crf
25, 10 at 26, 86 at 27 and all at 28, each attempt costing its set-up (a quarter of a short
render)."""
_RECON_BYTES = 8 << 20  # x264's reconstructions kept in the scratch file before it is emptied


class BandUnavailable(RuntimeError):
    """This render cannot be written in a band exactly: write whole pictures instead."""


def plan_band(boxes: list[tuple[int, int]], height: int) -> tuple[int, int] | None:
    """Macroblock rows [first, end) holding every luma row range in ``boxes`` with a margin,
    or None when that is most of the picture (or no picture has text)."""
    boxes = [box for box in boxes if box[1] > box[0]]
    if not boxes:
        return None
    rows = -(-height // MB)
    first = max(0, min(top for top, _ in boxes) // MB - MARGIN_MBS)
    end = min(rows, -(-max(bottom for _, bottom in boxes) // MB) + MARGIN_MBS)
    return (first, end) if end - first <= MAX_SHARE * rows else None


def _parameter_sets(extradata: bytes) -> tuple[dict[int, Sps], dict[int, Pps], list[bytes]]:
    sps: dict[int, Sps] = {}
    pps: dict[int, Pps] = {}
    units = split_annexb(extradata)
    for unit in units:
        if unit[0] & 0x1F == NAL_SPS:
            parsed = parse_sps(unit)
            sps[parsed.sps_id] = parsed
        elif unit[0] & 0x1F == NAL_PPS:
            parsed_pps = parse_pps(unit)
            pps[parsed_pps.pps_id] = parsed_pps
    return sps, pps, [u for u in units if u[0] & 0x1F == NAL_PPS]


def open_x264(
    width: int, height: int, options: dict[str, str], threads: int, fps: int = 30
) -> av.video.codeccontext.VideoCodecContext:
    """An x264 encoder outside any container (its parameter sets in ``extradata``)."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps)
    ctx.thread_type = "FRAME"
    ctx.thread_count = threads
    ctx.flags |= av.codec.context.Flags.global_header
    ctx.options = options
    ctx.open()
    return ctx


@lru_cache(maxsize=16)
def _flat_slices(
    width: int, rows: int, split: int, yuv: tuple[int, int, int], options: tuple, pps: bytes
) -> tuple[SliceHeader, ...]:
    """x264's keyframe slices of ``rows`` macroblock rows of flat ``yuv``, cut after ``split``
    macroblocks (the rows above the band; the rest go below it), checked to decode exactly.

    Kept in memory by each process and on disk for the next (:mod:`.diskcache`): in a fresh
    process they cost 20-55 ms here, the most of any one step of a short render's."""
    made_by = (_FLAT_VERSION, _FLAT_QP, _FLAT_PARAMS, av.__version__)
    key = repr((made_by, width, rows, split, yuv, options, pps)).encode()
    kept = diskcache.load(_FLAT_KIND, key)
    if kept is not None:
        with contextlib.suppress(BandUnavailable, BitstreamError, ValueError):
            return _read_flat(kept, pps)
    packed = _pack(*_encode_flat(width, rows, split, yuv, options, pps))
    flat = _read_flat(packed, pps)  # read as a later process reads it: only then is it kept
    diskcache.store(_FLAT_KIND, key, packed)
    return flat


_FLAT_KIND = "flat-slices"
_FLAT_VERSION = 1  # of what _encode_flat makes (with its settings and PyAV's x264, in the key)


def _pack(extradata: bytes, data: bytes) -> bytes:
    return len(extradata).to_bytes(4, "big") + extradata + data


def _read_flat(packed: bytes, pps: bytes) -> tuple[SliceHeader, ...]:
    """The flat slices from what :func:`_pack` made of x264's parameter sets and stream."""
    size = int.from_bytes(packed[:4], "big")
    extradata, data = packed[4 : 4 + size], packed[4 + size :]
    sps, pps_by_id, pps_units = _parameter_sets(extradata)
    if pps_units != [pps]:
        raise BandUnavailable("the flat slices' PPS differs")
    units = [u for u in split_annexb(data) if u[0] & 0x1F == NAL_IDR]
    if not units:
        raise BandUnavailable("no flat slices")
    return tuple(read_slice(u, sps, pps_by_id) for u in units)


def _encode_flat(
    width: int, rows: int, split: int, yuv: tuple[int, int, int], options: tuple, pps: bytes
) -> tuple[bytes, bytes]:
    """x264's parameter sets and stream of the flat picture, checked to decode exactly."""
    opts = dict(options)
    opts.pop("crf", None)
    opts["qp"] = _FLAT_QP
    opts["x264-params"] += _FLAT_PARAMS
    if 0 < split < rows * -(-width // MB):
        opts["x264-params"] += f":slice-max-mbs={split}"
    ctx = open_x264(width, rows * MB, opts, 1)
    extradata = bytes(ctx.extradata or b"")
    frame = av.VideoFrame(width, rows * MB, "yuv420p")
    fill_flat(frame, yuv)
    frame.pts = 0
    data = b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)])
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = extradata
    decoder.thread_count = 1  # one picture: frame threads would only start (7 -> 3.5 ms)
    pictures = decoder.decode(av.Packet(data)) + decoder.decode(None)
    widths = (width, width // 2, width // 2)  # (the planes' strides can be wider)
    if len(pictures) != 1 or not all(
        int(plane[:, :w].min()) == value == int(plane[:, :w].max())
        for plane, w, value in zip(frame_planes(pictures[0]), widths, yuv, strict=True)
    ):
        raise BandUnavailable("x264 does not reconstruct the flat background exactly")
    return extradata, data


class BandEncoder:
    """Pictures of ``width`` x ``height`` encoded through x264 at the height of ``band``
    (macroblock rows [first, end)); :meth:`encode` returns full access units."""

    def __init__(
        self,
        width: int,
        height: int,
        band: tuple[int, int],
        background: tuple[int, int, int],
        options: dict[str, str],
        threads: int,
        extradata: bytes,
        scratch: Path,
        fps: int = 30,
    ) -> None:
        """``scratch``: the directory of the output, where x264's reconstructions go (one at a
        time: the file is emptied as each is checked; a killed render's work directory takes
        it away with the rest)."""
        self.width, self.height = width, height
        self.first, self.end = band
        self.background = background
        self.top, self.bottom = self.first * MB, min(height, self.end * MB)  # luma rows
        self._sps, self._pps, pps_units = _parameter_sets(extradata)
        if len(self._pps) != 1 or not all(p.cabac for p in self._pps.values()):
            raise BandUnavailable("bands need CABAC and one PPS")
        sps = self._sps[next(iter(self._pps.values())).sps_id]
        # Macroblocks as the stream counts them: a width of 1080 is 68 of them, cropped.
        self.mb_width, self.mb_rows = sps.width_mbs, sps.height_map_units
        if not sps.frame_mbs_only or self.mb_rows != -(-height // MB):
            raise BandUnavailable("bands need progressive frames")
        band_rows = self.end - self.first
        # x264 writes each picture's reconstruction here (its --dump-yuv), which is what the
        # edge rows are checked on: far cheaper than decoding the band again.
        handle, self._recon_path = tempfile.mkstemp(
            prefix=".renderlab-band-", suffix=".yuv", dir=scratch
        )
        os.close(handle)
        self._recon = os.open(self._recon_path, os.O_RDWR)
        try:
            self._open(options, threads, pps_units, band_rows, fps)
        except BaseException:
            self.close()
            raise
        self._frame = av.VideoFrame(width, band_rows * MB, "yuv420p")
        fill_flat(self._frame, background)  # rows past the picture's end stay background
        self._sent = 0
        self._skips: dict[int, list[tuple[int, bytes]]] = {}
        self._checked = 0  # pictures whose reconstruction was checked
        self._unemptied = 0  # of them, written to the file since it was last emptied
        luma = width * band_rows * MB
        self._recon_size = luma * 3 // 2
        self._edges = self._edge_offsets(luma, band_rows * MB)

    def _open(
        self,
        options: dict[str, str],
        threads: int,
        pps_units: list[bytes],
        band_rows: int,
        fps: int,
    ) -> None:
        """x264 at the band's height (at the output's rate, for its rate control), and the
        flat slices around it."""
        params = f"{options['x264-params']}:dump-yuv={self._recon_path}"
        self._x264 = open_x264(
            self.width, band_rows * MB, {**options, "x264-params": params}, threads, fps
        )
        band_sps, self._band_pps, band_pps_units = _parameter_sets(
            bytes(self._x264.extradata or b"")
        )
        if band_pps_units != pps_units or not _compatible(band_sps, self._sps):
            raise BandUnavailable("the band's parameter sets differ from the picture's")
        self._band_sps = band_sps
        outside = self.mb_rows - band_rows
        self._flat: tuple[SliceHeader, ...] = ()
        if outside:
            key = tuple(sorted(options.items()))
            split = self.first * self.mb_width
            self._flat = _flat_slices(
                self.width, outside, split, self.background, key, pps_units[0]
            )

    def fill(self, buffer: np.ndarray, rows: tuple[int, int] | None, whole: bool) -> None:
        """Take the band of the I420 picture in ``buffer`` for the next :meth:`encode`.
        ``rows``: the luma rows where it differs from the previous picture (None: unknown);
        ``whole``: copy the whole band anyway (the first picture)."""
        if rows is not None and rows[0] < rows[1] and (rows[0] < self.top or rows[1] > self.bottom):
            raise BandUnavailable(f"text at rows {rows[0]}-{rows[1]} leaves the band")
        top, bottom = (self.top, self.bottom) if whole or rows is None else rows
        top, bottom = max(top, self.top), min(bottom, self.bottom)
        if top < bottom:
            copy_rows(self._frame, buffer, self.width, self.height, (top, bottom), at=self.top)

    def encode(self, idr: bool) -> list[tuple[bytes, bool]]:
        """Encode the band taken by :meth:`fill` (as an IDR picture if ``idr``); returns
        (access unit, keyframe) for each picture x264 gave back."""
        self._frame.pts = self._sent
        self._frame.pict_type = (
            av.video.frame.PictureType.I if idr else av.video.frame.PictureType.NONE
        )
        self._sent += 1
        return self._units(self._x264.encode(self._frame))

    def flush(self) -> list[tuple[bytes, bool]]:
        """The pictures still inside x264."""
        return self._units(self._x264.encode(None))

    def close(self) -> None:
        """Remove the reconstruction file (x264 has written its last picture by now)."""
        if self._recon >= 0:
            os.close(self._recon)
            self._recon = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._recon_path)

    def _units(self, packets: list[av.Packet]) -> list[tuple[bytes, bool]]:
        out = []
        for packet in packets:
            self._check()
            data = bytes(packet)
            out.append((self._access_unit(data), bool(packet.is_keyframe)))
        # x264 writes a picture's reconstruction when it hands the picture back, at the
        # picture's offset: all written so far are checked. The file is emptied (sparse from
        # there) once it holds _RECON_BYTES, not after every picture: on ext4 each truncation
        # is a journal transaction, about 0.5 ms, more than encoding a band picture.
        self._unemptied += len(packets)
        if self._unemptied * self._recon_size >= _RECON_BYTES:
            os.ftruncate(self._recon, 0)
            self._unemptied = 0
        return out

    def _edge_offsets(self, luma: int, rows: int) -> list[tuple[int, int, int]]:
        """(offset in a reconstructed picture, length, value) of each edge row to check."""
        width, chroma = self.width, luma // 4
        planes = (
            (0, width, rows),
            (luma, width // 2, rows // 2),
            (luma + chroma, width // 2, rows // 2),
        )
        edges = []
        for (start, stride, count), value in zip(planes, self.background, strict=True):
            if self.first > 0:
                edges.append((start, stride, value))
            if self.end < self.mb_rows:
                edges.append((start + (count - 1) * stride, stride, value))
        return edges

    def _check(self) -> None:
        """The band's edge rows must be the background in x264's reconstruction of the picture
        it just gave back (see the module's docstring)."""
        base = self._checked * self._recon_size
        self._checked += 1
        for offset, length, value in self._edges:
            row = os.pread(self._recon, length, base + offset)
            if len(row) != length:
                raise BandUnavailable("x264's reconstruction is missing")
            if row.count(value) != length:
                raise BandUnavailable("the band's edge rows are not the background")

    def _access_unit(self, data: bytes) -> bytes:
        """The full picture's access unit from the band's."""
        offset = self.first * self.mb_width
        others, slices = [], []
        ref_idc = 2
        idr_pic_id: int | None = None
        for unit in split_annexb(data):
            kind = unit[0] & 0x1F
            if kind not in (NAL_SLICE, NAL_IDR):
                others.append(unit)
                continue
            header = read_slice(unit, self._band_sps, self._band_pps)
            ref_idc = (unit[0] >> 5) & 3
            if kind == NAL_IDR:
                idr_pic_id = header.value("idr_pic_id")
            slices.append(write_slice(header, first_mb=header.value("first_mb") + offset))
        if not slices:
            raise BitstreamError("an access unit without a slice")
        if idr_pic_id is not None:
            around = [self._flat_slice(s, idr_pic_id) for s in self._flat]
        else:
            around = self._skipped(ref_idc)
        cut = self.first * self.mb_width
        above = [s for first_mb, s in around if first_mb < cut]
        below = [s for first_mb, s in around if first_mb >= cut]
        return join_annexb([*others, *above, *slices, *below])

    def _flat_slice(self, header: SliceHeader, idr_pic_id: int) -> tuple[int, bytes]:
        first_mb = header.value("first_mb")
        if first_mb >= self.first * self.mb_width:  # below the band
            first_mb += (self.end - self.first) * self.mb_width
        return first_mb, write_slice(header, first_mb=first_mb, idr_pic_id=idr_pic_id)

    def _skipped(self, ref_idc: int) -> list[tuple[int, bytes]]:
        """The skipped rows above and below, the same bytes for every P picture of a
        reference kind (the stream's rewriter numbers them afterwards)."""
        if ref_idc not in self._skips:
            self._skips[ref_idc] = self._skip_slices(ref_idc)
        return self._skips[ref_idc]

    def _skip_slices(self, ref_idc: int) -> list[tuple[int, bytes]]:
        pps = next(iter(self._pps.values()))
        sps = self._sps[pps.sps_id]
        out = []
        width = self.mb_width
        if self.first > 0:
            unit = skip_slice(pps, sps, ref_idc, 0, 0, first_mb=0, count=self.first * width)
            out.append((0, split_annexb(unit)[0]))
        if self.end < self.mb_rows:
            first_mb = self.end * width
            count = (self.mb_rows - self.end) * width
            unit = skip_slice(pps, sps, ref_idc, 0, 0, first_mb=first_mb, count=count)
            out.append((first_mb, split_annexb(unit)[0]))
        return out


def _compatible(band: dict[int, Sps], full: dict[int, Sps]) -> bool:
    """The band's slices parse and decode the same under the full picture's SPS: every field
    read is the same but the height (level and cropping are not read, and may differ)."""
    if band.keys() != full.keys():
        return False
    return all(
        replace(sps, height_map_units=0) == replace(full[sps_id], height_map_units=0)
        for sps_id, sps in band.items()
    )
