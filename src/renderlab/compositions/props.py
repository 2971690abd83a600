"""TextAnimation props, validated exactly as ``spec/text-animation.md`` states them.

The model is strict (no type coercion, no unknown fields) so a bad prop is refused with a
message naming the field before anything is stored or drawn.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal

import regex
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from renderlab.strings import check_storable, draws_nothing

STYLES = ("fade-in", "typewriter", "slide-up", "scale")
MAX_TEXT_GRAPHEMES = 500
# The composition's size: even, 16..1920, the long side within 1920 and the short within 1080,
# so 9:16, 1:1 and 4:5 are as valid as 16:9 (the caps apply to sides, not to orientation).
DEFAULT_WIDTH, DEFAULT_HEIGHT = 1920, 1080
MIN_SIDE, MAX_LONG_SIDE, MAX_SHORT_SIDE = 16, 1920, 1080
MAX_DURATION_FRAMES = 600  # the spec's 30..600 frames
DEFAULT_FPS: Final = 30  # its one rate
_GRAPHEME = regex.compile(r"\X")

_HEX_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")


def check_color(value: str, info: ValidationInfo) -> str:
    """``#RRGGBB``, said in words: pydantic's own message for a pattern quotes the regex."""
    if not _HEX_COLOR.fullmatch(value):
        # "transparent" is what people write for no background: say how to ask for one
        none = value.strip().lower() in ("transparent", "none", "")
        hint = ""
        if none and info.field_name == "background_color":
            hint = "; leave it out for a transparent background"
        raise ValueError(
            f"{info.field_name} must be a colour as #RRGGBB (six hex digits, like #FFFFFF),"
            f" not {value!r}{hint}"
        )
    return value


def near_miss_first(errors: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``errors`` with the unknown fields that are near a known one first: "colour" given for
    "color" is one mistake that pydantic reports as a missing ``color`` first and an extra
    ``colour`` after it, and only the second says what to change."""
    return sorted(errors, key=lambda error: _meant(error) is None)


def _meant(error: Mapping[str, Any]) -> str | None:
    """The known field an unknown one is near, or None."""
    loc = error.get("loc") or ()
    if error.get("type") != "extra_forbidden" or not loc:
        return None
    import difflib  # only for this error: not a cost of every process that loads the props

    close = difflib.get_close_matches(str(loc[-1]), TextAnimationProps.model_fields, n=1)
    return close[0] if close else None


def error_message(error: Mapping[str, Any]) -> str:
    """One of pydantic's errors about these props, as the API and the CLI say it: without
    pydantic's "Value error, " prefix, with the value given when it is not one of the choices,
    and the field meant when an unknown one is near a known one ("colour": "color")."""
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "literal_error" and "input" in error:
        return f"{message}, not {error['input']!r}"
    over = _over_the_top(error)
    if over is not None:
        return over
    meant = _meant(error)
    return message if meant is None else f"{message} (did you mean {meant!r}?)"


def too_long(seconds: int) -> str:
    """The seed's sentence for a duration above the cap (``caps.check_duration`` says it too)."""
    return f"Animation too long. Maximum duration is {seconds} seconds."


def _over_the_top(error: Mapping[str, Any]) -> str | None:
    """The caps' own sentences for a duration or a side above the props' bounds (which are the
    default caps): the seed's "Animation too long" rather than pydantic's "less than or equal
    to 600", and both sides' limits for a side, since the shorter has its own."""
    if error.get("type") != "less_than_equal" or not error.get("loc"):
        return None
    field = error["loc"][-1]
    if field == "duration_in_frames":
        seed = too_long(MAX_DURATION_FRAMES // DEFAULT_FPS).removesuffix(".")
        frames = f"{MAX_DURATION_FRAMES} frames at {DEFAULT_FPS} fps"
        return f"{seed} ({frames}), got {error.get('input')}."
    if field in ("width", "height"):
        return (
            f"{field} must be at most {MAX_LONG_SIDE} pixels (the longer side; the shorter at "
            f"most {MAX_SHORT_SIDE}), got {error.get('input')}."
        )
    return None


# The pattern stays in the document (for clients and schemathesis); the check is check_color.
Color = Annotated[
    str, AfterValidator(check_color), Field(json_schema_extra={"pattern": "^#[0-9A-Fa-f]{6}$"})
]


def graphemes(text: str) -> list[str]:
    """User-perceived characters (extended grapheme clusters), as the spec counts them."""
    return _GRAPHEME.findall(text)


def grapheme_count(text: str) -> int:
    return len(graphemes(text))


def check_text_draws(value: str) -> str:
    """``text`` must draw something (see :mod:`renderlab.strings`); ValueError otherwise,
    which pydantic reports under the field's name. (Empty text has its own message.)"""
    if value and draws_nothing(value):
        raise ValueError(
            "text must draw something: it holds only whitespace or invisible characters"
        )
    return value


class TextAnimationProps(BaseModel):
    """What a generation holds and every frame of its video shows."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # Said in the document: at most MAX_TEXT_GRAPHEMES characters (code points: never fewer
    # than the grapheme clusters counted below, so a schema-valid text is never too long).
    text: Annotated[str, Field(json_schema_extra={"minLength": 1, "maxLength": MAX_TEXT_GRAPHEMES})]
    style: Literal["fade-in", "typewriter", "slide-up", "scale"]
    font_family: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "Inter"
    font_size: Annotated[float, Field(ge=12, le=200)] = 48
    color: Color
    background_color: Color | None = None
    duration_in_frames: Annotated[int, Field(ge=30, le=MAX_DURATION_FRAMES)] = 90
    fps: Literal[30] = DEFAULT_FPS
    width: Annotated[int, Field(ge=MIN_SIDE, le=MAX_LONG_SIDE)] = DEFAULT_WIDTH
    height: Annotated[int, Field(ge=MIN_SIDE, le=MAX_LONG_SIDE)] = DEFAULT_HEIGHT

    @field_validator("text", "font_family")
    @classmethod
    def _strings(cls, value: str) -> str:
        return check_storable(value)

    @field_validator("text")
    @classmethod
    def _text_visible(cls, value: str) -> str:
        return check_text_draws(value)

    @field_validator("text")
    @classmethod
    def _text_length(cls, value: str) -> str:
        count = grapheme_count(value)
        if count < 1:
            raise ValueError("text must not be empty")
        if count > MAX_TEXT_GRAPHEMES:
            raise ValueError(f"text must be at most {MAX_TEXT_GRAPHEMES} characters, got {count}")
        return value

    @field_validator("font_family")
    @classmethod
    def _family_printable(cls, value: str) -> str:
        if not value.strip() or not value.isprintable():
            raise ValueError("font_family must be a printable family name")
        return value

    @field_validator("width")
    @classmethod
    def _width_even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("width must be an even number of pixels")
        return value

    @field_validator("height")
    @classmethod
    def _height_even_and_short_side(cls, value: int, info: ValidationInfo) -> int:
        if value % 2:
            raise ValueError("height must be an even number of pixels")
        width = info.data.get("width")
        if isinstance(width, int) and min(width, value) > MAX_SHORT_SIDE:
            raise ValueError(
                f"the shorter side must be at most {MAX_SHORT_SIDE} pixels"
                f" (the longer at most {MAX_LONG_SIDE}), got {width}x{value}"
            )
        return value

    @property
    def duration_seconds(self) -> float:
        return self.duration_in_frames / self.fps
