"""Quality caps: is a requested render within the configured limits?

Checked before any quota is used, so a refused request costs the user nothing (the seed spent
a slot first). Every number in a message comes from :class:`~renderlab.limits.Limits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from renderlab.compositions.props import too_long
from renderlab.limits import Limits

if TYPE_CHECKING:
    from renderlab.compositions.props import TextAnimationProps

COMPOSITION_WIDTH = 1920
COMPOSITION_HEIGHT = 1080
CODECS = ("h264", "vp9", "prores", "gif")  # the table is renderlab.render.formats
ASPECT_TOLERANCE = 0.01  # even sizes round: 640x362 is a 16:9 render (ratio within 1 %)


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


def default_size(
    limits: Limits,
    composition_width: int = COMPOSITION_WIDTH,
    composition_height: int = COMPOSITION_HEIGHT,
) -> RenderSize:
    """The composition's own size, or the largest even size of its aspect within smaller caps."""
    long_cap, short_cap = limits.max_width, limits.max_height
    long_side = max(composition_width, composition_height)
    short_side = min(composition_width, composition_height)
    scale = min(1.0, long_cap / long_side, short_cap / short_side)
    width = int(composition_width * scale) // 2 * 2
    height = int(composition_height * scale) // 2 * 2
    return RenderSize(max(width, limits.min_dimension), max(height, limits.min_dimension))


def requested_size(
    limits: Limits,
    composition_width: int,
    composition_height: int,
    width: int | None,
    height: int | None,
) -> RenderSize:
    """The size a render or still asked for: both sides as given; neither, the composition's
    (:func:`default_size`); one, with the other at the composition's aspect ratio, even (a
    width of 1280 for 1920x1080 is 1280x720, not 1280 against the default height)."""
    if width is None and height is None:
        return default_size(limits, composition_width, composition_height)
    if width is None:
        assert height is not None
        return RenderSize(_even(height * composition_width / composition_height), height)
    if height is None:
        return RenderSize(width, _even(width * composition_height / composition_width))
    return RenderSize(width, height)


def _even(side: float) -> int:
    return max(2, round(side / 2) * 2)


def check_duration(duration_in_frames: int, fps: int, limits: Limits) -> None:
    if duration_in_frames > limits.max_frames_at(fps):
        raise CapError(
            "duration_in_frames",
            too_long(limits.max_duration_seconds),
            "duration_too_long",
        )


def check_size(width: int, height: int, limits: Limits) -> None:
    """Refuse a size above the caps, odd, or under the minimum dimension."""
    for field, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise CapError(field, f"{field} must be an integer.", "invalid_resolution")
    # The caps bound the long and the short side, whatever the orientation.
    long_field = "width" if width >= height else "height"
    short_field = "height" if long_field == "width" else "width"
    too_large = None
    if max(width, height) > limits.max_width:
        too_large = long_field
    elif min(width, height) > limits.max_height:
        too_large = short_field
    if too_large is not None:
        cap = (limits.max_width, limits.max_height)
        cap = cap if width >= height else cap[::-1]  # stated in the request's orientation
        # 1920x1920 is within "1920" on each side: say that the shorter side is the one over
        short = (
            "" if too_large == long_field else f" (the shorter side at most {limits.max_height})"
        )
        raise CapError(
            too_large,
            f"Resolution too large. Maximum is {cap[0]}x{cap[1]}{short}.",
            "resolution_too_large",
        )
    for field, value in (("width", width), ("height", height)):
        if value < limits.min_dimension or value % 2:
            raise CapError(
                field,
                f"Width and height must be even numbers of at least {limits.min_dimension} pixels.",
                "invalid_resolution",
            )


def check_aspect(
    width: int,
    height: int,
    composition_width: int = COMPOSITION_WIDTH,
    composition_height: int = COMPOSITION_HEIGHT,
) -> None:
    """Refuse a render whose aspect ratio is not its composition's (it would distort or crop)."""
    wanted = composition_width / composition_height
    if abs(width / height - wanted) > ASPECT_TOLERANCE * wanted:
        raise CapError(
            "width",
            f"{width}x{height} is not the shape of this {composition_width}x{composition_height}"
            f" composition (at width {width} it is"
            f" {width}x{_even(width * composition_height / composition_width)}). For another"
            " shape, make the composition that shape: set width and height in its props.",
            "invalid_resolution",
        )


def check_render_size(
    width: int,
    height: int,
    composition_width: int,
    composition_height: int,
    limits: Limits,
) -> None:
    """Everything a render size must pass: the caps, then the composition's aspect ratio."""
    check_size(width, height, limits)
    check_aspect(width, height, composition_width, composition_height)


def check_codec(codec: str) -> None:
    if codec not in CODECS:
        raise CapError("codec", f"Unsupported codec {codec!r}; use {' or '.join(CODECS)}.")


def check_render(
    props: TextAnimationProps, width: int, height: int, limits: Limits, codec: str
) -> None:
    """Everything a whole render of ``props`` in ``codec`` must pass before it is accepted: the
    duration and size caps, the composition's aspect, and a cost that fits well inside the
    render timeout (``render.cost``), so a render that would time out is refused at submit,
    naming what to change."""
    from renderlab.render.cost import check_cost  # the renderer's model; imports no encoder

    check_codec(codec)
    check_duration(props.duration_in_frames, props.fps, limits)
    check_render_size(width, height, props.width, props.height, limits)
    check_cost(props, width, height, limits, codec)
