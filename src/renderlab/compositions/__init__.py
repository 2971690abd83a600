"""The TextAnimation composition: its props (validated) and its motion math."""

from renderlab.compositions.motion import (
    FrameState,
    clamp,
    ease_out_cubic,
    frame_state,
    interpolate,
    spring,
)
from renderlab.compositions.props import STYLES, TextAnimationProps, grapheme_count, graphemes

__all__ = [
    "STYLES",
    "FrameState",
    "TextAnimationProps",
    "clamp",
    "ease_out_cubic",
    "frame_state",
    "grapheme_count",
    "graphemes",
    "interpolate",
    "spring",
]
