"""Just enough H.264 bitstream surgery to repeat a picture without encoding it again.

A run of identical frames is sent to x264 once; every further frame of the run is a P picture
whose macroblocks are all ``P_Skip`` (zero motion, no residual), written here. Such a picture
decodes to exactly its reference picture, so it repeats the previous frame bit for bit, for any
content, at the cost of a few dozen bytes and no encoder time.

Because these pictures are reference pictures, ``frame_num`` (and, with ``pic_order_cnt_type``
0, the picture order count) of every later picture from the encoder must count them too:
:class:`StreamRewriter` renumbers the encoder's slices as they pass. Only fixed-width fields are
rewritten, so no other bit moves. Everything follows ITU-T H.264 sections 7.3 and 9.3.

:func:`read_slice` and :func:`write_slice` read a slice header whole and write it back with
fields changed, which is how :mod:`renderlab.render.band` moves a band's slices into the
full picture; :func:`skip_slice` writes skipped macroblocks for any run of a picture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

NAL_SLICE = 1
NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8

_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
_START_CODE = re.compile(b"\x00\x00\x01")
_EMULATION = re.compile(b"\x00\x00\x03")
_NEEDS_ESCAPE = re.compile(b"\x00\x00(?=[\x00-\x03])")


class BitstreamError(ValueError):
    """The encoder produced something this module does not know how to renumber."""


# --- bits -------------------------------------------------------------------------------------


class BitReader:
    """Reads an RBSP (emulation prevention already removed) bit by bit."""

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._length = len(data) * 8
        self.pos = 0

    def u(self, n: int) -> int:
        if n == 0:
            return 0
        if self.pos + n > self._length:
            raise BitstreamError("read past the end of a NAL unit")
        shift = self._length - self.pos - n
        self.pos += n
        return (self._value >> shift) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise BitstreamError("invalid Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)


class BitWriter:
    """Accumulates bits MSB first into one Python int (NAL units here are tiny)."""

    def __init__(self) -> None:
        self._value = 0
        self.length = 0

    def u(self, value: int, n: int) -> None:
        self._value = (self._value << n) | (value & ((1 << n) - 1))
        self.length += n

    def ue(self, value: int) -> None:
        code = value + 1
        width = code.bit_length()
        self.u(0, width - 1)
        self.u(code, width)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align(self, bit: int) -> None:
        while self.length % 8:
            self.u(bit, 1)

    def to_bytes(self) -> bytes:
        if self.length % 8:
            raise BitstreamError("bit writer is not byte aligned")
        return self._value.to_bytes(self.length // 8, "big")


def unescape(nal: bytes) -> bytes:
    """NAL payload to RBSP: drop the emulation prevention bytes."""
    return _EMULATION.sub(b"\x00\x00", nal)


def escape(rbsp: bytes) -> bytes:
    """RBSP to NAL payload: insert emulation prevention bytes."""
    escaped = _NEEDS_ESCAPE.sub(b"\x00\x00\x03", rbsp)
    if escaped.endswith(b"\x00\x00"):  # trailing cabac_zero_words
        escaped += b"\x03"
    return escaped


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units (header byte included) of an Annex B byte stream."""
    units = []
    for chunk in _START_CODE.split(data):
        chunk = chunk.rstrip(b"\x00")  # a 4-byte start code leaves a zero at the end
        if chunk:
            units.append(chunk)
    return units


def join_annexb(units: list[bytes]) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + unit for unit in units)


# --- parameter sets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sps:
    profile_idc: int
    sps_id: int
    chroma_format_idc: int
    separate_colour_plane: bool
    log2_max_frame_num: int
    poc_type: int
    log2_max_poc_lsb: int
    delta_pic_order_always_zero: bool
    width_mbs: int
    height_map_units: int
    frame_mbs_only: bool
    max_num_ref_frames: int = 1

    @property
    def pic_size_mbs(self) -> int:
        return self.width_mbs * self.height_map_units * (1 if self.frame_mbs_only else 2)

    @property
    def chroma_array_type(self) -> int:
        return 0 if self.separate_colour_plane else self.chroma_format_idc


@dataclass(frozen=True)
class Pps:
    pps_id: int
    sps_id: int
    cabac: bool
    bottom_field_pic_order_present: bool
    num_ref_idx_l0_active: int
    weighted_pred: bool
    pic_init_qp: int
    deblocking_filter_control_present: bool
    redundant_pic_cnt_present: bool


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + r.se() + 256) % 256
        last = nxt if nxt != 0 else last


def parse_sps(nal: bytes) -> Sps:
    r = BitReader(unescape(nal[1:]))
    profile_idc = r.u(8)
    r.u(16)  # constraint flags, level_idc
    sps_id = r.ue()
    chroma_format_idc, separate = 1, False
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            separate = bool(r.u(1))
        r.ue()  # bit_depth_luma_minus8
        r.ue()  # bit_depth_chroma_minus8
        r.u(1)  # qpprime_y_zero_transform_bypass_flag
        if r.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.u(1):
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    log2_max_frame_num = r.ue() + 4
    poc_type = r.ue()
    log2_max_poc_lsb = 0
    always_zero = False
    if poc_type == 0:
        log2_max_poc_lsb = r.ue() + 4
    elif poc_type == 1:
        always_zero = bool(r.u(1))
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    max_num_ref_frames = r.ue()
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = bool(r.u(1))
    return Sps(
        profile_idc=profile_idc,
        sps_id=sps_id,
        chroma_format_idc=chroma_format_idc,
        separate_colour_plane=separate,
        log2_max_frame_num=log2_max_frame_num,
        poc_type=poc_type,
        log2_max_poc_lsb=log2_max_poc_lsb,
        delta_pic_order_always_zero=always_zero,
        width_mbs=width_mbs,
        height_map_units=height_map_units,
        frame_mbs_only=frame_mbs_only,
        max_num_ref_frames=max_num_ref_frames,
    )


def parse_pps(nal: bytes) -> Pps:
    r = BitReader(unescape(nal[1:]))
    pps_id = r.ue()
    sps_id = r.ue()
    cabac = bool(r.u(1))
    bottom_field = bool(r.u(1))
    if r.ue() != 0:
        raise BitstreamError("slice groups are not supported")
    num_ref_idx_l0_active = r.ue() + 1
    r.ue()  # num_ref_idx_l1_default_active_minus1
    weighted_pred = bool(r.u(1))
    r.u(2)  # weighted_bipred_idc
    pic_init_qp = 26 + r.se()
    r.se()  # pic_init_qs_minus26
    r.se()  # chroma_qp_index_offset
    deblocking = bool(r.u(1))
    r.u(1)  # constrained_intra_pred_flag
    redundant = bool(r.u(1))
    return Pps(
        pps_id=pps_id,
        sps_id=sps_id,
        cabac=cabac,
        bottom_field_pic_order_present=bottom_field,
        num_ref_idx_l0_active=num_ref_idx_l0_active,
        weighted_pred=weighted_pred,
        pic_init_qp=pic_init_qp,
        deblocking_filter_control_present=deblocking,
        redundant_pic_cnt_present=redundant,
    )


HIGH_444_PREDICTIVE = 244


def check_repeatable(sps: Sps) -> None:
    """Refuse a stream the repeat pictures would corrupt, or that players refuse.

    A skip picture decodes to the most recent reference picture; the encoder, which never saw
    the repeats, may predict from an older one. That is the same picture only while the
    stream keeps one reference frame, so more than one is refused rather than corrupted.
    """
    if sps.max_num_ref_frames > 1:
        raise BitstreamError(
            f"the encoder keeps {sps.max_num_ref_frames} reference frames; repeats need ref=1"
        )
    if sps.profile_idc == HIGH_444_PREDICTIVE:
        raise BitstreamError("High 4:4:4 Predictive (lossless) streams are refused by many players")


# --- CABAC (9.3.4), only what an all-skip P slice needs ----------------------------------------

# Table 9-44, rangeTabLPS[pStateIdx][qCodIRangeIdx].
_RANGE_LPS = (
    (128, 176, 208, 240), (128, 167, 197, 227), (128, 158, 187, 216), (123, 150, 178, 205),
    (116, 142, 169, 195), (111, 135, 160, 185), (105, 128, 152, 175), (100, 122, 144, 166),
    (95, 116, 137, 158), (90, 110, 130, 150), (85, 104, 123, 142), (81, 99, 117, 135),
    (77, 94, 111, 128), (73, 89, 105, 122), (69, 85, 100, 116), (66, 80, 95, 110),
    (62, 76, 90, 104), (59, 72, 86, 99), (56, 69, 81, 94), (53, 65, 77, 89),
    (51, 62, 73, 85), (48, 59, 69, 80), (46, 56, 66, 76), (43, 53, 63, 72),
    (41, 50, 59, 69), (39, 48, 56, 65), (37, 45, 54, 62), (35, 43, 51, 59),
    (33, 41, 48, 56), (32, 39, 46, 53), (30, 37, 43, 50), (29, 35, 41, 48),
    (27, 33, 39, 45), (26, 31, 37, 43), (24, 30, 35, 41), (23, 28, 33, 39),
    (22, 27, 32, 37), (21, 26, 30, 35), (20, 24, 29, 33), (19, 23, 27, 31),
    (18, 22, 26, 30), (17, 21, 25, 28), (16, 20, 23, 27), (15, 19, 22, 25),
    (14, 18, 21, 24), (14, 17, 20, 23), (13, 16, 19, 22), (12, 15, 18, 21),
    (12, 14, 17, 20), (11, 14, 16, 19), (11, 13, 15, 18), (10, 12, 15, 17),
    (10, 12, 14, 16), (9, 11, 13, 15), (9, 11, 12, 14), (8, 10, 12, 14),
    (8, 9, 11, 13), (7, 9, 11, 12), (7, 9, 10, 12), (7, 8, 10, 11),
    (6, 8, 9, 11), (6, 7, 9, 10), (6, 7, 8, 9), (2, 2, 2, 2),
)  # fmt: skip
# Table 9-45, transIdxLPS (transIdxMPS is min(state + 1, 62)).
_TRANS_LPS = (
    0, 0, 1, 2, 2, 4, 4, 5, 6, 7, 8, 9, 9, 11, 11, 12,
    13, 13, 15, 15, 16, 16, 18, 18, 19, 19, 21, 21, 22, 22, 23, 24,
    24, 25, 26, 26, 27, 27, 28, 29, 29, 30, 30, 30, 31, 32, 32, 33,
    33, 33, 34, 34, 35, 35, 35, 36, 36, 36, 37, 37, 37, 38, 38, 63,
)  # fmt: skip
# Table 9-13, (m, n) of ctxIdx 11 (mb_skip_flag in P slices, ctxIdxInc 0) for cabac_init_idc 0.
_SKIP_CTX_MN = (23, 33)


class _CabacEncoder:
    """The arithmetic encoder of 9.3.4.2 - 9.3.4.6, writing into a list of bits."""

    def __init__(self) -> None:
        self.low = 0
        self.range = 510
        self.first = True
        self.outstanding = 0
        self.bits: list[int] = []

    def _put(self, bit: int) -> None:
        if self.first:
            self.first = False
        else:
            self.bits.append(bit)
        if self.outstanding:
            self.bits.extend([1 - bit] * self.outstanding)
            self.outstanding = 0

    def _renorm(self) -> None:
        while self.range < 256:
            if self.low < 256:
                self._put(0)
            elif self.low >= 512:
                self.low -= 512
                self._put(1)
            else:
                self.low -= 256
                self.outstanding += 1
            self.range <<= 1
            self.low <<= 1

    def decision(self, ctx: list[int], bin_val: int) -> None:
        state, mps = ctx
        lps = _RANGE_LPS[state][(self.range >> 6) & 3]
        self.range -= lps
        if bin_val != mps:
            self.low += self.range
            self.range = lps
            if state == 0:
                ctx[1] = 1 - mps
            ctx[0] = _TRANS_LPS[state]
        else:
            ctx[0] = min(state + 1, 62)
        self._renorm()

    def terminate(self, bin_val: int) -> None:
        self.range -= 2
        if bin_val:
            self.low += self.range
            self.range = 2
            self._renorm()
            self._put((self.low >> 9) & 1)
            self.bits.extend((((self.low >> 7) & 3) | 1) >> i & 1 for i in (1, 0))
        else:
            self._renorm()


@lru_cache(maxsize=16)
def _cabac_skip_data(pic_size_mbs: int, slice_qp: int) -> bytes:
    """The CABAC slice_data of a P slice whose every macroblock is skipped, byte aligned.

    Independent of the slice header's length (the data starts byte aligned), so it is made once.
    The macroblocks but the last are the same two bins (mb_skip_flag 1, end_of_slice_flag 0),
    so the encoder's state after each is a function of its state before: once a state comes
    back, the bits between the two repeat until the last macroblock. The low register drains
    to zero within a few renormalisations and the range walks a short cycle, so a 1080p
    picture's 8,160 macroblocks are a few hundred steps (2.5 -> 0.2 ms, a render's first).
    """
    m, n = _SKIP_CTX_MN
    pre = max(1, min(126, ((m * max(0, min(51, slice_qp))) >> 4) + n))
    ctx = [63 - pre, 0] if pre <= 63 else [pre - 64, 1]
    enc = _CabacEncoder()
    seen: dict[tuple[int, ...], tuple[int, int]] | None = {}
    mb, last = 0, pic_size_mbs - 1
    while mb < last:
        enc.decision(ctx, 1)  # mb_skip_flag
        enc.terminate(0)  # end_of_slice_flag
        mb += 1
        state = (ctx[0], ctx[1], enc.range, enc.low, enc.outstanding, enc.first)
        if seen is not None and state in seen:
            before, at = seen[state]
            period, repeats = mb - before, (last - mb) // (mb - before)
            enc.bits.extend(enc.bits[at:] * repeats)
            mb += period * repeats
            seen = None  # the rest, shorter than a period, step by step
        elif seen is not None:
            seen[state] = (mb, len(enc.bits))
    if pic_size_mbs:
        enc.decision(ctx, 1)
        enc.terminate(1)
    bits = enc.bits  # ends with rbsp_stop_one_bit (written by the flush)
    bits = bits + [0] * (-len(bits) % 8)  # rbsp_alignment_zero_bits
    value = int("".join(map(str, bits)), 2) if bits else 0
    return value.to_bytes(len(bits) // 8, "big")


def skip_slice(
    pps: Pps,
    sps: Sps,
    ref_idc: int,
    frame_num: int,
    poc_lsb: int,
    first_mb: int = 0,
    count: int | None = None,
) -> bytes:
    """A P slice (Annex B) of ``count`` skipped macroblocks from ``first_mb`` (default: the
    rest of the picture): each copies its place in the previous picture."""
    count = sps.pic_size_mbs - first_mb if count is None else count
    w = BitWriter()
    w.u(0, 1)  # forbidden_zero_bit
    w.u(ref_idc, 2)
    w.u(NAL_SLICE, 5)
    w.ue(first_mb)  # first_mb_in_slice
    w.ue(5 if count == sps.pic_size_mbs else 0)  # P (5: every slice of the picture is P)
    w.ue(pps.pps_id)
    if sps.separate_colour_plane:
        w.u(0, 2)
    w.u(frame_num, sps.log2_max_frame_num)
    if not sps.frame_mbs_only:
        w.u(0, 1)  # field_pic_flag
    if sps.poc_type == 0:
        w.u(poc_lsb, sps.log2_max_poc_lsb)
        if pps.bottom_field_pic_order_present:
            w.se(0)
    elif sps.poc_type == 1 and not sps.delta_pic_order_always_zero:
        w.se(0)
        if pps.bottom_field_pic_order_present:
            w.se(0)
    if pps.redundant_pic_cnt_present:
        w.ue(0)
    w.u(0, 1)  # num_ref_idx_active_override_flag
    w.u(0, 1)  # ref_pic_list_modification_flag_l0
    if pps.weighted_pred:
        w.ue(0)  # luma_log2_weight_denom
        if sps.chroma_array_type != 0:
            w.ue(0)  # chroma_log2_weight_denom
        for _ in range(pps.num_ref_idx_l0_active):
            w.u(0, 1)  # luma_weight_l0_flag
            if sps.chroma_array_type != 0:
                w.u(0, 1)  # chroma_weight_l0_flag
    w.u(0, 1)  # adaptive_ref_pic_marking_mode_flag
    if pps.cabac:
        w.ue(0)  # cabac_init_idc
    w.se(0)  # slice_qp_delta
    if pps.deblocking_filter_control_present:
        w.ue(1)  # disable_deblocking_filter_idc: nothing to filter anyway
    if pps.cabac:
        w.align(1)  # cabac_alignment_one_bit
        rbsp = w.to_bytes() + _cabac_skip_data(count, pps.pic_init_qp)
    else:
        w.ue(count)  # mb_skip_run
        w.u(1, 1)  # rbsp_stop_one_bit
        w.align(0)
        rbsp = w.to_bytes()
    return join_annexb([rbsp[:1] + escape(rbsp[1:])])


# --- slices, read whole and written back ----------------------------------------------------


@dataclass
class SliceHeader:
    """A CABAC slice's header, field by field as read, and its slice data (byte aligned).

    Written back with :func:`write_slice`, any named field changed: a slice encoded as a
    picture of its own moves into a larger picture by a new ``first_mb``.
    """

    nal_header: int
    fields: list[tuple[str, str, int, int]]  # (name or "", "u"/"ue"/"se", value, bits)
    data: bytes

    def value(self, name: str) -> int:
        return next(v for n, _, v, _ in self.fields if n == name)


class _FieldReader:
    def __init__(self, data: bytes) -> None:
        self.bits = BitReader(data)
        self.fields: list[tuple[str, str, int, int]] = []

    def u(self, n: int, name: str = "") -> int:
        value = self.bits.u(n)
        self.fields.append((name, "u", value, n))
        return value

    def ue(self, name: str = "") -> int:
        value = self.bits.ue()
        self.fields.append((name, "ue", value, 0))
        return value

    def se(self, name: str = "") -> int:
        value = self.bits.se()
        self.fields.append((name, "se", value, 0))
        return value


def read_slice(unit: bytes, sps_by_id: dict[int, Sps], pps_by_id: dict[int, Pps]) -> SliceHeader:
    """The header of a slice NAL unit of a progressive, CABAC, I or P stream (7.3.3)."""
    kind, ref_idc = unit[0] & 0x1F, (unit[0] >> 5) & 3
    rbsp = unescape(unit[1:])
    r = _FieldReader(rbsp)
    r.ue("first_mb")
    slice_type = r.ue("slice_type") % 5
    pps = pps_by_id[r.ue("pps_id")]
    sps = sps_by_id[pps.sps_id]
    if not pps.cabac or not sps.frame_mbs_only or slice_type not in (0, 2):
        raise BitstreamError("only progressive CABAC I and P slices are read whole")
    if sps.separate_colour_plane:
        r.u(2)
    r.u(sps.log2_max_frame_num, "frame_num")
    if kind == NAL_IDR:
        r.ue("idr_pic_id")
    if sps.poc_type == 0:
        r.u(sps.log2_max_poc_lsb, "poc_lsb")
        if pps.bottom_field_pic_order_present:
            r.se()
    elif sps.poc_type == 1 and not sps.delta_pic_order_always_zero:
        r.se()
        if pps.bottom_field_pic_order_present:
            r.se()
    if pps.redundant_pic_cnt_present:
        r.ue()
    if slice_type == 0:
        _read_p_lists(r, sps, pps)
    if ref_idc:
        if kind == NAL_IDR:
            r.u(1)  # no_output_of_prior_pics_flag
            r.u(1)  # long_term_reference_flag
        elif r.u(1):  # adaptive_ref_pic_marking_mode_flag
            while (op := r.ue()) != 0:
                for _ in range((op in (1, 2, 3, 4, 6)) + (op == 3)):
                    r.ue()
    if slice_type == 0:
        r.ue()  # cabac_init_idc
    r.se("qp_delta")
    if pps.deblocking_filter_control_present and r.ue() != 1:
        r.se()
        r.se()
    pos = r.bits.pos
    while pos % 8:  # cabac_alignment_one_bit
        if not r.bits.u(1):
            raise BitstreamError("cabac_alignment_one_bit is 0")
        pos += 1
    return SliceHeader(unit[0], r.fields, rbsp[pos // 8 :])


def _read_p_lists(r: _FieldReader, sps: Sps, pps: Pps) -> None:
    """num_ref_idx override, ref_pic_list_modification and pred_weight_table of a P slice."""
    refs = pps.num_ref_idx_l0_active
    if r.u(1):  # num_ref_idx_active_override_flag
        refs = r.ue() + 1
    if r.u(1):  # ref_pic_list_modification_flag_l0
        while r.ue() != 3:
            r.ue()
    if pps.weighted_pred:
        r.ue()  # luma_log2_weight_denom
        chroma = sps.chroma_array_type != 0
        if chroma:
            r.ue()
        for _ in range(refs):
            if r.u(1):
                r.se()
                r.se()
            if chroma and r.u(1):
                for _ in range(4):
                    r.se()


def write_slice(header: SliceHeader, **changes: int) -> bytes:
    """The slice NAL unit (no start code) with the named fields changed."""
    w = BitWriter()
    w.u(header.nal_header, 8)
    for name, kind, value, bits in header.fields:
        value = changes.get(name, value) if name else value
        if kind == "u":
            w.u(value, bits)
        elif kind == "ue":
            w.ue(value)
        else:
            w.se(value)
    w.align(1)  # cabac_alignment_one_bit
    rbsp = w.to_bytes()
    return rbsp[:1] + escape(rbsp[1:] + header.data)


# --- the stream -------------------------------------------------------------------------------


class StreamRewriter:
    """Renumbers an encoder's access units and writes all-skip repeats between them.

    Feed it every access unit in decode order: :meth:`encoded` for what the encoder produced,
    :meth:`repeat` for a copy of the previous picture. Both return Annex B bytes. The encoder
    must use no B-frames (``bframes=0``), one slice group and progressive frames.
    """

    def __init__(self, extradata: bytes) -> None:
        self.sps: dict[int, Sps] = {}
        self.pps: dict[int, Pps] = {}
        for unit in split_annexb(extradata):
            self._parameter_set(unit)
        if not self.pps:
            raise BitstreamError("no PPS in the encoder's extradata")
        self._frame_num = 0  # frame_num of the next picture
        self._poc_frames = 0  # pictures since the last IDR
        self._last_pps: Pps | None = None
        self._ref_idc = 2
        # A repeat's bytes depend only on these: a render's hundreds of repeats are a handful
        # of distinct access units (frame_num wraps), each written once.
        self._repeats: dict[tuple[Pps, Sps, int, int, int], bytes] = {}

    def _parameter_set(self, unit: bytes) -> None:
        kind = unit[0] & 0x1F
        if kind == NAL_SPS:
            sps = parse_sps(unit)
            check_repeatable(sps)
            self.sps[sps.sps_id] = sps
        elif kind == NAL_PPS:
            pps = parse_pps(unit)
            self.pps[pps.pps_id] = pps

    def encoded(self, data: bytes) -> bytes:
        """Renumber one encoded access unit (Annex B) so it follows the pictures before it."""
        out = []
        picture_is_ref = False
        is_idr = False
        for unit in split_annexb(data):
            kind = unit[0] & 0x1F
            if kind in (NAL_SPS, NAL_PPS):
                self._parameter_set(unit)
            elif kind in (NAL_SLICE, NAL_IDR):
                is_idr = kind == NAL_IDR
                if is_idr:
                    self._frame_num = 0
                    self._poc_frames = 0
                ref_idc = (unit[0] >> 5) & 3
                picture_is_ref = ref_idc != 0
                if picture_is_ref:
                    self._ref_idc = ref_idc
                unit = self._renumber(unit, is_idr)
            out.append(unit)
        self._advance(picture_is_ref)
        return join_annexb(out)

    def repeat(self) -> bytes:
        """An access unit showing the previous picture again: a P slice of skipped macroblocks."""
        pps = self._last_pps
        if pps is None:
            raise BitstreamError("a repeat needs a picture before it")
        sps = self.sps[pps.sps_id]
        frame_num = self._frame_num % (1 << sps.log2_max_frame_num)
        poc_lsb = self._poc_lsb(sps) if sps.poc_type == 0 else 0
        key = (pps, sps, self._ref_idc, frame_num, poc_lsb)
        unit = self._repeats.get(key)
        if unit is None:
            unit = self._repeats[key] = skip_slice(pps, sps, self._ref_idc, frame_num, poc_lsb)
        self._advance(True)
        return unit

    def _poc_lsb(self, sps: Sps) -> int:
        return (2 * self._poc_frames) % (1 << sps.log2_max_poc_lsb)

    def _advance(self, is_ref: bool) -> None:
        self._poc_frames += 1
        if is_ref:
            self._frame_num += 1

    def _renumber(self, unit: bytes, is_idr: bool) -> bytes:
        rbsp = bytearray(unescape(unit[1:]))
        r = BitReader(bytes(rbsp[:32]))
        r.ue()  # first_mb_in_slice
        slice_type = r.ue() % 5
        if slice_type == 1:
            raise BitstreamError("B slices are not supported (use bframes=0)")
        pps = self.pps[r.ue()]
        sps = self.sps[pps.sps_id]
        self._last_pps = pps
        if sps.separate_colour_plane:
            r.u(2)
        frame_num_at = r.pos
        r.u(sps.log2_max_frame_num)
        if not sps.frame_mbs_only and r.u(1):
            raise BitstreamError("field pictures are not supported")
        if is_idr:
            r.ue()  # idr_pic_id
        fields = [(frame_num_at, sps.log2_max_frame_num, 0 if is_idr else self._frame_num)]
        if sps.poc_type == 0:
            fields.append((r.pos, sps.log2_max_poc_lsb, self._poc_lsb(sps)))
        for pos, width, value in fields:
            _write_bits(rbsp, pos, width, value % (1 << width))
        return unit[:1] + escape(bytes(rbsp))


def _write_bits(buf: bytearray, pos: int, width: int, value: int) -> None:
    for i in range(width):
        bit = (value >> (width - 1 - i)) & 1
        byte, offset = divmod(pos + i, 8)
        mask = 0x80 >> offset
        buf[byte] = (buf[byte] | mask) if bit else (buf[byte] & ~mask)
