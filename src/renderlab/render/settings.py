"""Checks on what a render asks for, made before the first frame is drawn.

Props are validated by their own model (``compositions.props``); this adds what depends on the
deployment's limits (size and duration caps) and on the render call (frame, CRF, chunking).
Each refusal is a :class:`renderlab.caps.CapError`: it names its field and carries a stable
``code`` the API maps to its error codes. Nothing here reads the environment: a caller serving
a deployment passes its ``Limits`` (``services.limits``; the CLI, ``get_limits()``); without
them the defaults of :class:`~renderlab.limits.Limits` apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from renderlab.caps import CapError, check_duration, check_render_size, check_size
from renderlab.compositions.props import TextAnimationProps
from renderlab.limits import Limits
from renderlab.render.encode import MAX_CRF, MIN_CRF


def validate_size(width: int, height: int, limits: Limits | None = None) -> None:
    """Refuse a size above the caps, odd, or under the minimum dimension."""
    check_size(width, height, limits or Limits())


def validate_duration(props: TextAnimationProps, limits: Limits | None = None) -> None:
    check_duration(props.duration_in_frames, props.fps, limits or Limits())


def validate_crf(crf: int) -> None:
    if isinstance(crf, bool) or not isinstance(crf, int) or not MIN_CRF <= crf <= MAX_CRF:
        raise CapError(
            "crf",
            f"crf must be an integer from {MIN_CRF} to {MAX_CRF} (crf 0 is lossless"
            " High 4:4:4, which many players cannot decode).",
        )


def validate_frame(props: TextAnimationProps, frame: int) -> None:
    if isinstance(frame, bool) or not isinstance(frame, int):
        raise CapError("frame", "frame must be an integer.", "invalid_frame")
    if not 0 <= frame < props.duration_in_frames:
        raise CapError(
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
    limits = limits or Limits()
    check_render_size(width, height, props.width, props.height, limits)
    validate_duration(props, limits)
