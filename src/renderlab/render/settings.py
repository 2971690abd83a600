"""Checks on what a render asks for, made before the first frame is drawn.

Props are validated by their own model (``compositions.props``); this adds what depends on the
deployment's limits (size and duration caps) and on the render call (frame, CRF, chunking).
Each refusal names its field and carries a stable ``code`` the API maps to its error codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from renderlab.compositions.props import TextAnimationProps
from renderlab.limits import Limits, get_limits
from renderlab.render.encode import MAX_CRF, MIN_CRF


class RenderSettingsError(ValueError):
    """A render setting outside what is allowed; ``field`` names it, ``code`` classifies it."""

    def __init__(self, field: str, message: str, code: str = "invalid_setting") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


def validate_size(width: int, height: int, limits: Limits | None = None) -> None:
    """Refuse a size above the caps, odd, or under the minimum dimension."""
    limits = limits or get_limits()
    for field, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise RenderSettingsError(field, f"{field} must be an integer.", "invalid_resolution")
    if width > limits.max_width or height > limits.max_height:
        field = "width" if width > limits.max_width else "height"
        raise RenderSettingsError(
            field,
            f"Resolution too large. Maximum is {limits.max_width}x{limits.max_height}.",
            "resolution_too_large",
        )
    for field, value in (("width", width), ("height", height)):
        if value < limits.min_dimension or value % 2:
            raise RenderSettingsError(
                field,
                f"Width and height must be even numbers of at least {limits.min_dimension} pixels.",
                "invalid_resolution",
            )


def validate_duration(props: TextAnimationProps, limits: Limits | None = None) -> None:
    limits = limits or get_limits()
    if props.duration_in_frames > limits.max_frames_at(props.fps):
        raise RenderSettingsError(
            "duration_in_frames",
            f"Animation too long. Maximum duration is {limits.max_duration_seconds} seconds.",
            "duration_too_long",
        )


def validate_crf(crf: int) -> None:
    if isinstance(crf, bool) or not isinstance(crf, int) or not MIN_CRF <= crf <= MAX_CRF:
        raise RenderSettingsError("crf", f"crf must be an integer from {MIN_CRF} to {MAX_CRF}.")


def validate_frame(props: TextAnimationProps, frame: int) -> None:
    if isinstance(frame, bool) or not isinstance(frame, int):
        raise RenderSettingsError("frame", "frame must be an integer.", "invalid_frame")
    if not 0 <= frame < props.duration_in_frames:
        raise RenderSettingsError(
            "frame",
            f"frame must be from 0 to {props.duration_in_frames - 1}.",
            "invalid_frame",
        )


def as_props(props: TextAnimationProps | Mapping[str, Any]) -> TextAnimationProps:
    """Props as the model; a mapping is validated strictly (pydantic names the bad field)."""
    if isinstance(props, TextAnimationProps):
        return props
    return TextAnimationProps.model_validate(dict(props))


def check_render(
    props: TextAnimationProps, width: int, height: int, limits: Limits | None = None
) -> None:
    """Everything a render or still of ``props`` at this size must pass, limits included."""
    limits = limits or get_limits()
    validate_size(width, height, limits)
    validate_duration(props, limits)
