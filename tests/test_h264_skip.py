"""The all-skip slice data: the shortcut through the encoder's repeating states writes the same
bits as encoding every macroblock, for every picture size and slice QP."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from renderlab.render import h264


def every_macroblock(pic_size_mbs: int, slice_qp: int) -> bytes:
    """The slice data encoded one macroblock after another (what the shortcut replaces)."""
    m, n = h264._SKIP_CTX_MN
    pre = max(1, min(126, ((m * max(0, min(51, slice_qp))) >> 4) + n))
    ctx = [63 - pre, 0] if pre <= 63 else [pre - 64, 1]
    enc = h264._CabacEncoder()
    for mb in range(pic_size_mbs):
        enc.decision(ctx, 1)
        enc.terminate(1 if mb == pic_size_mbs - 1 else 0)
    bits = enc.bits + [0] * (-len(enc.bits) % 8)
    value = int("".join(map(str, bits)), 2) if bits else 0
    return value.to_bytes(len(bits) // 8, "big")


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=9000), st.integers(min_value=0, max_value=51))
def test_the_shortcut_writes_every_macroblocks_bits(pic_size_mbs: int, slice_qp: int) -> None:
    assert h264._cabac_skip_data.__wrapped__(pic_size_mbs, slice_qp) == every_macroblock(
        pic_size_mbs, slice_qp
    )


def test_the_pictures_renders_use_are_the_same() -> None:
    for mbs in (1, 2, 3, 120, 8160, 3600, 8160 - 120 * 5, 14400):  # 1080p, 720p, 4K rows...
        for qp in (0, 18, 23, 26, 51):
            assert h264._cabac_skip_data.__wrapped__(mbs, qp) == every_macroblock(mbs, qp)
