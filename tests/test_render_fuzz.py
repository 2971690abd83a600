"""Any Unicode text renders without an exception and never outside the padded width."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from renderlab.compositions.props import MAX_TEXT_GRAPHEMES, grapheme_count
from renderlab.render import render_still
from renderlab.render.layout import FRAME_WIDTH, PADDING_X
from renderlab.strings import draws_nothing, storable
from tests.render_helpers import alpha, props

WIDTH, HEIGHT = 640, 360
PAD = PADDING_X * WIDTH / FRAME_WIDTH

_emoji = st.sampled_from(["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "1️⃣", "❤️", "🏳️‍🌈", "🫠"])
_specials = st.sampled_from(
    [
        "\u200d",
        "\u200c",
        "\u200b",
        "\u0301",
        "\u0489",
        "\ufe0f",
        "\u202e",
        "\u2066",
        "\x00",
        "\x1b",
        "\t",
        "\n",
        "\r",
        " ",
        "\u00a0",
        "\u3000",
        "\ufeff",
        "\U000e0041",
        "\ufffd",
        "\u0627",
        "\u05d0",
        "\u4e2d",
        "\u0915\u094d\u0937",
        "\U0001d54f",
    ]
)
_texts = st.one_of(
    st.text(min_size=1, max_size=120),
    st.lists(st.one_of(_emoji, _specials, st.characters()), min_size=1, max_size=80).map("".join),
    st.integers(1, 500).map(lambda n: "😀" * n),
    st.integers(1, 500).map(lambda n: "w" * n),
    st.text(st.characters(whitelist_categories=("Mn", "Me")), min_size=1, max_size=60).map(
        lambda marks: "a" + marks
    ),
)


def _check(text: str, style: str, frame: int, font_size: int) -> None:
    p = props(text=text, style=style, font_size=font_size, duration_in_frames=60)
    a = alpha(render_still(p, frame, WIDTH, HEIGHT))
    cols = np.nonzero(a.max(axis=0))[0]
    if cols.size:
        assert cols[0] >= PAD and cols[-1] < WIDTH - PAD


@settings(max_examples=35, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=_texts,
    style=st.sampled_from(["fade-in", "slide-up", "scale", "typewriter"]),
    frame=st.integers(0, 59),
    font_size=st.sampled_from([12, 48, 200]),
)
def test_any_text_renders_inside_the_padded_width(
    text: str, style: str, frame: int, font_size: int
) -> None:
    assume(1 <= grapheme_count(text) <= MAX_TEXT_GRAPHEMES)
    assume(storable(text) is None and not draws_nothing(text))  # what the props accept
    _check(text, style, frame, font_size)


def test_the_worst_cases_named_in_the_issue() -> None:
    for text in ("😀" * 500, "w" * 500, "\u200d" * 3 + "a\u0301" * 200, "a\x01\x7f\x9f"):
        for font_size in (12, 200):
            _check(text, "fade-in", 59, font_size)
