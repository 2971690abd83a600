"""What a render of some props will cost, estimated before anything is drawn.

The renderer encodes one picture per run of identical frames and draws each picture's text box,
so its time is about (distinct pictures) x (encoding a frame + compositing the box), plus the
runs it rasterises anew. Colour glyphs (emoji) are composited in floating point, some 25 times
slower a pixel than plain text, which is what made 500 emoji in a 200 px typewriter run for
minutes. :func:`estimate` counts the pictures exactly from the motion math and sizes each
picture's box from the text (advances per kind of character, lines wrapped at the padded
width); :func:`check_cost` refuses what would not finish well inside the render timeout.

Pure: no fonts are opened, nothing is drawn, so the API can call it for every submit. The
coefficients are seconds measured on the 2-core development machine while it was shared (so
on the slow side); ``docs/performance.md`` has the measurements.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from renderlab.caps import CapError
from renderlab.compositions.motion import CURSOR_BLINK_FRAMES, FADE_FRAMES, frame_state
from renderlab.compositions.props import TextAnimationProps, graphemes
from renderlab.limits import Limits

FRAME_WIDTH, FRAME_HEIGHT = 1920, 1080  # the encoder coefficient's frame size
PADDING_X = 40  # each side of the composition, as in render.layout
LINE_HEIGHT_EM = 1.22  # Inter's normal line height; fallback fonts are close to it
MARGIN_EM = 0.5  # ink above and below the line boxes (the tile is cropped to the ink)
WRAP_SLACK = 1.15  # breaking at spaces leaves lines shorter than the width
ADVANCE_EM = {"colour": 1.3, "wide": 1.05, "narrow": 0.65}

START_S = 0.5  # fonts, encoder set-up, muxing
# One distinct 1080p picture through each codec's path (repeats are never encoded again):
# x264 veryfast on the whole picture (text that stays in its rows costs far less, in a band);
# VP9 lossless and ProRes 4444, whose pictures are composited, converted and encoded whole
# (25-27 and 87-90 ms a picture measured here, both encoders on both cores); GIF's frames.
ENCODE_S = {"h264": 0.012, "vp9": 0.03, "prores": 0.1, "gif": 0.006}
MONO_S_PER_MPX = 0.012  # compositing plain text, per million pixels of its box
COLOUR_S_PER_MPX = 0.3  # compositing a box with colour glyphs (floating point, per pixel)
# Rasterising the line being typed, per cluster on it: colour glyphs are drawn at their strike
# (109 px for Noto Color Emoji) whatever the size, then resampled.
TYPED_S_PER_CLUSTER = {"mono": 3e-5, "colour": 1e-3}
LAYOUT_S_PER_CLUSTER = 2e-5  # laying a prefix out afresh, per grapheme cluster
LAYOUT_S_PER_WORD_CLUSTER2 = 2e-7  # breaking a word longer than a line, per cluster squared


@dataclass(frozen=True)
class Estimate:
    """Seconds the render is expected to take on the development machine, and why."""

    seconds: float
    pictures: int
    colour: bool
    codec: str
    encoding: float
    """Of ``seconds``, the encoder's: what another codec would change."""


def cluster_kind(cluster: str) -> str:
    """ "colour" (emoji: drawn from a colour bitmap font), "wide" (CJK, Hangul) or "narrow"."""
    cp = ord(cluster[0])
    if "\ufe0f" in cluster or "\u20e3" in cluster or "\u200d" in cluster or cp >= 0x1F000:
        return "colour" if not 0x1F100 <= cp <= 0x1F1E5 or len(cluster) > 1 else "narrow"
    if 0x2600 <= cp <= 0x27BF or 0x2B00 <= cp <= 0x2BFF or 0x2300 <= cp <= 0x23FF:
        return "colour"
    if 0x1100 <= cp <= 0x11FF or 0x2E80 <= cp <= 0xD7AF or 0xF900 <= cp <= 0xFFEF:
        return "wide"
    if 0x20000 <= cp <= 0x3FFFF:
        return "wide"
    return "narrow"


@dataclass(frozen=True)
class _Box:
    """The text box of a shown prefix, in composition pixels at font size 1 (em units)."""

    lines: int
    width_em: float
    colour: bool
    word: int  # clusters of the longest run without a break opportunity
    on_line: int  # clusters on the last line (the one being typed)


def _prefix_boxes(clusters: list[str], font_size: float, line_width: float) -> list[_Box]:
    """The box of every prefix (0..N clusters), in one pass."""
    per_line = line_width / font_size / WRAP_SLACK
    boxes = [_Box(1, 0.0, False, 0, 0)]
    lines, line_em, widest, colour = 1, 0.0, 0.0, False
    word = longest = on_line = 0
    for cluster in clusters:
        kind = cluster_kind(cluster)
        # A break may come after a space and around ideographs and emoji.
        word = 0 if cluster.isspace() or kind != "narrow" else word + 1
        longest = max(longest, word)
        if cluster in ("\n", "\r\n", "\r"):
            lines, line_em, on_line = lines + 1, 0.0, 0
        else:
            colour = colour or kind == "colour"
            line_em += ADVANCE_EM[kind]
            on_line += 1
            if line_em > per_line:
                lines, line_em, on_line = lines + 1, ADVANCE_EM[kind], 1
            widest = max(widest, line_em if lines == 1 else per_line)
        boxes.append(_Box(lines, widest, colour, longest, on_line))
    return boxes


def _box_mpx(
    box: _Box, font_size: float, scale: float, k: float, line_width: float, height: int
) -> float:
    """Millions of output pixels of the box drawn for ``box`` at ``scale``."""
    em = font_size * scale * k
    width = min(line_width * k, box.width_em * em)
    tall = min(float(height), (box.lines * LINE_HEIGHT_EM + MARGIN_EM) * em)
    return width * tall / 1e6


def _pictures(props: TextAnimationProps) -> Iterator[tuple[int, float]]:
    """(clusters shown, scale) of each run of identical frames, in order."""
    previous: object = None
    if props.style == "typewriter":
        total = len(graphemes(props.text))
        typing = math.floor(0.8 * props.duration_in_frames)
        for frame in range(props.duration_in_frames):
            n = total if typing <= 0 or frame >= typing else frame * total // typing
            cursor = (frame // CURSOR_BLINK_FRAMES) % 2 == 0 and n < total
            if (n, cursor) != previous:
                previous = (n, cursor)
                yield n + cursor, 1.0
        return
    total = len(graphemes(props.text))
    for frame in range(props.duration_in_frames):
        state = frame_state(props, frame)
        key = (state.opacity, state.offset_y, state.scale)
        if key != previous:
            previous = key
            yield total, state.scale
        elif frame > FADE_FRAMES and props.style != "scale":
            return  # fade-in and slide-up hold their last picture from here on


@functools.lru_cache(maxsize=1024)
def estimate(props: TextAnimationProps, width: int, height: int, codec: str) -> Estimate:
    """Expected seconds for a whole render of ``props`` at ``width`` x ``height`` in ``codec``.

    Cached (props are frozen, so hashable, and the estimate depends on nothing else): every
    ``POST /v1/renders`` checks it, and the same generation is rendered again and again
    (90 us of a 0.93-1.2 ms start here; 0.6 us cached)."""
    k = min(width / props.width, height / props.height)  # the composition scaled to the output
    line_width = float(max(props.width - 2 * PADDING_X, 1))
    clusters = graphemes(props.text)
    boxes = _prefix_boxes([*clusters, "|"], float(props.font_size), line_width)
    encode = ENCODE_S[codec] * width * height / (FRAME_WIDTH * FRAME_HEIGHT)
    seconds, pictures, colour = START_S, 0, False
    for shown, scale in _pictures(props):
        box = boxes[min(shown, len(boxes) - 1)]
        per_mpx = COLOUR_S_PER_MPX if box.colour else MONO_S_PER_MPX
        seconds += encode + per_mpx * _box_mpx(box, props.font_size, scale, k, line_width, height)
        seconds += LAYOUT_S_PER_CLUSTER * shown + LAYOUT_S_PER_WORD_CLUSTER2 * box.word**2
        if props.style == "typewriter":
            seconds += TYPED_S_PER_CLUSTER["colour" if box.colour else "mono"] * box.on_line
        pictures += 1
        colour = colour or box.colour
    return Estimate(seconds, pictures, colour, codec, encode * pictures)


def cost_message(found: Estimate, budget: float, props: TextAnimationProps) -> str:
    """The refusal users read: how far over, and what to change first."""
    what = "the text" + (" (emoji are the costliest to draw)" if found.colour else "")
    advice = f"shorten {what}, lower font_size or duration_in_frames"
    if props.style == "typewriter":
        advice += ", or use a style other than typewriter (it draws a picture per character)"
    if _encoder_bound(found):
        each = found.encoding / max(found.pictures, 1)
        advice = (
            f"use codec h264 ({found.codec} encodes each distinct picture whole, about "
            f"{each:.2g} s each here), or {advice}"
        )
    return (
        f"Render too costly: about {found.seconds:.0f} s of drawing and encoding for "
        f"{found.pictures} distinct pictures, above the {budget:.0f} s allowed. To render it, "
        f"{advice}."
    )


def _encoder_bound(found: Estimate) -> bool:
    """Most of the estimate is an encoder slower than H.264's (so the codec is what to change)."""
    return found.codec != "h264" and found.encoding > (found.seconds - START_S) / 2


def check_cost(
    props: TextAnimationProps, width: int, height: int, limits: Limits, codec: str
) -> None:
    """Refuse (:class:`~renderlab.caps.CapError`, code ``render_too_costly``, a 422 at the API)
    a render expected to take more than a third of ``limits.render_timeout_s``; its field is
    ``codec`` when the encoder is most of the cost, else ``text``."""
    budget = limits.render_cost_budget_s
    found = estimate(props, width, height, codec)
    if found.seconds > budget:
        field = "codec" if _encoder_bound(found) else "text"
        raise CapError(field, cost_message(found, budget, props), "render_too_costly")
