"""VP9 repeats without encoding: ``show_existing_frame`` packets.

A VP9 frame header may say "show reference slot k again" (``show_existing_frame``): one byte,
no decoding, no change to any decoder state. After each encoded picture the slot it was
stored in is read from its uncompressed header (VP9 bitstream spec 6.2), and every repeat of
it is that one byte; the alpha stream (WebM BlockAdditional 1) gets its own. libvpx encodes
an unchanged frame cheaply without alpha (~0.2 ms at 1080p) but ~22 ms with it, and any
encoded repeat spends bytes and adapts state; this costs neither.
"""

from __future__ import annotations

ALPHA_ADDITIONAL_ID = (1).to_bytes(8, "big")  # WebM BlockAddID 1: the alpha channel's frame


def stored_slot(frame: bytes) -> int | None:
    """The lowest reference slot this shown frame is stored in, or None (not stored, hidden,
    or not parsed here: then the caller encodes the repeat instead)."""
    if not frame:
        return None
    bits = "".join(f"{b:08b}" for b in frame[:4])
    if bits[:2] != "10":
        return None
    profile = int(bits[2]) + 2 * int(bits[3])
    pos = 5 if profile == 3 else 4
    if bits[pos] == "1":  # show_existing_frame: already a repeat
        return None
    frame_type, show_frame, error_resilient = bits[pos + 1], bits[pos + 2], bits[pos + 3]
    if frame_type == "0":  # key frame: refreshes every slot
        return 0
    if show_frame == "0":
        return None
    pos += 4
    if error_resilient == "0":
        pos += 2  # reset_frame_context
    flags = int(bits[pos : pos + 8], 2)
    if flags == 0:
        return None
    return (flags & -flags).bit_length() - 1


def show_existing(frame: bytes, slot: int) -> bytes:
    """A one-byte frame showing ``slot`` again, in the profile of ``frame`` (profiles 0-2)."""
    return bytes([(frame[0] & 0xF0) | 0x08 | slot])


def alpha_repeat(additional: bytes) -> bytes | None:
    """The BlockAdditional for a repeat, the same length as ``additional`` (PyAV can only
    rewrite side data in place): the one-byte frame, then zero bytes, which VP9 decoders skip
    after a frame. None when the alpha frame's slot cannot be told."""
    if not additional.startswith(ALPHA_ADDITIONAL_ID) or len(additional) < 9:
        return None
    frame = additional[8:]
    slot = stored_slot(frame)
    if slot is None:
        return None
    return (ALPHA_ADDITIONAL_ID + show_existing(frame, slot)).ljust(len(additional), b"\x00")
