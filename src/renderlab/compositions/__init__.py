"""The TextAnimation composition: its props (validated) and its motion math."""

from renderlab.compositions.props import STYLES, TextAnimationProps, grapheme_count, graphemes

__all__ = ["STYLES", "TextAnimationProps", "grapheme_count", "graphemes"]
