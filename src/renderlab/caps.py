"""Quality caps: is a requested render within the configured limits?

Checked before any quota is used, so a refused request costs the user nothing (the seed spent
a slot first). Every number in a message comes from :class:`~renderlab.limits.Limits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from renderlab.limits import Limits

if TYPE_CHECKING:
    from renderlab.compositions.props import TextAnimationProps

COMPOSITION_WIDTH = 1920
COMPOSITION_HEIGHT = 1080
CODECS = ("h264",)


class CapError(ValueError):
    """A render setting outside what is allowed: ``field`` names it, ``code`` is the API's
    error code (``duration_too_long``, ``resolution_too_large``, ``invalid_resolution``, ...)."""

    def __init__(self, field: str, message: str, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class RenderSize:
    width: int
    height: int


def default_size(limits: Limits) -> RenderSize:
    """The composition's 1920x1080, or the largest even 16:9 size within smaller caps."""
    scale = min(1.0, limits.max_width / COMPOSITION_WIDTH, limits.max_height / COMPOSITION_HEIGHT)
    width = int(COMPOSITION_WIDTH * scale) // 2 * 2
    height = int(COMPOSITION_HEIGHT * scale) // 2 * 2
    return RenderSize(max(width, limits.min_dimension), max(height, limits.min_dimension))


def check_duration(duration_in_frames: int, fps: int, limits: Limits) -> None:
    if duration_in_frames > limits.max_frames_at(fps):
        raise CapError(
            "duration_in_frames",
            f"Animation too long. Maximum duration is {limits.max_duration_seconds} seconds.",
            "duration_too_long",
        )


def check_size(width: int, height: int, limits: Limits) -> None:
    """Refuse a size above the caps, odd, or under the minimum dimension."""
    for field, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise CapError(field, f"{field} must be an integer.", "invalid_resolution")
    if width > limits.max_width or height > limits.max_height:
        raise CapError(
            "width" if width > limits.max_width else "height",
            f"Resolution too large. Maximum is {limits.max_width}x{limits.max_height}.",
            "resolution_too_large",
        )
    for field, value in (("width", width), ("height", height)):
        if value < limits.min_dimension or value % 2:
            raise CapError(
                field,
                f"Width and height must be even numbers of at least {limits.min_dimension} pixels.",
                "invalid_resolution",
            )


def check_codec(codec: str) -> None:
    if codec not in CODECS:
        raise CapError("codec", f"Unsupported codec {codec!r}; use {' or '.join(CODECS)}.")


def check_render(props: TextAnimationProps, width: int, height: int, limits: Limits) -> None:
    """Everything a whole render of ``props`` must pass before it is accepted: the duration and
    size caps, and a cost that fits well inside the render timeout (``render.cost``), so a
    render that would time out is refused at submit, naming what to shorten."""
    from renderlab.render.cost import check_cost  # the renderer's model; imports no encoder

    check_duration(props.duration_in_frames, props.fps, limits)
    check_size(width, height, limits)
    check_cost(props, width, height, limits)
