"""The TextAnimation motion math (``spec/text-animation.md``, section Motion), as pure functions.

Everything a frame shows is a function of the props and the frame number; :func:`frame_state`
collects it in a hashable :class:`FrameState`, so the renderer can tell two frames with the same
picture apart from two that differ without drawing either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from renderlab.compositions.props import TextAnimationProps, graphemes

FADE_FRAMES = 30  # fade-in and slide-up last this many frames
SLIDE_DISTANCE_PX = 100.0  # slide-up starts this far below its resting place (1080p px)
TYPEWRITER_FRACTION = 0.8  # the typewriter has typed everything at floor(0.8 D)
CURSOR_BLINK_FRAMES = 15  # the cursor shows on even blocks of this many frames
CURSOR = "|"

# The scale spring never reaches 1 exactly. Once its envelope is below this, the box moves less
# than 0.11 px anywhere in the 1080p frame (the farthest point from the centre is < 1100 px away),
# so the picture is the settled one: the frame state says scale 1.0 from then on, for good.
SPRING_REST_DELTA = 1e-4


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    """Limit ``value`` to ``[low, high]`` (the spec's clamp is to [0, 1])."""
    return low if value < low else high if value > high else value


def interpolate(
    value: float,
    input_range: Sequence[float] = (0.0, 1.0),
    output_range: Sequence[float] = (0.0, 1.0),
    *,
    clamp_output: bool = True,
) -> float:
    """Map ``value`` linearly from ``input_range`` to ``output_range``, clamped by default.

    Like Remotion's ``interpolate`` with ``extrapolateLeft/Right: "clamp"`` for two-point ranges.
    """
    (x0, x1), (y0, y1) = input_range, output_range
    if x1 == x0:
        raise ValueError("input_range must not be empty")
    t = (value - x0) / (x1 - x0)
    if clamp_output:
        t = clamp(t)
    return y0 + t * (y1 - y0)


def ease_out_cubic(t: float) -> float:
    """1 - (1 - t)^3: fast start, gentle landing."""
    return 1.0 - (1.0 - t) ** 3


def spring(
    frame: float,
    fps: float,
    stiffness: float = 100.0,
    damping: float = 10.0,
    mass: float = 1.0,
) -> float:
    """A damped spring from 0 to 1, starting at rest, sampled at t = frame / fps seconds.

    The closed-form solution of m x'' + c x' + k (x - 1) = 0 with x(0) = 0, x'(0) = 0; the spec
    gives the underdamped case, the other two are here so any spring config is safe to ask for.
    """
    if stiffness <= 0 or mass <= 0 or damping < 0 or fps <= 0:
        raise ValueError("spring needs stiffness > 0, mass > 0, damping >= 0 and fps > 0")
    t = max(frame, 0.0) / fps
    w0 = math.sqrt(stiffness / mass)
    zeta = damping / (2.0 * math.sqrt(stiffness * mass))
    if zeta < 1.0:
        w1 = w0 * math.sqrt(1.0 - zeta * zeta)
        return 1.0 - math.exp(-zeta * w0 * t) * (
            math.cos(w1 * t) + (zeta * w0 / w1) * math.sin(w1 * t)
        )
    if zeta == 1.0:
        return 1.0 - math.exp(-w0 * t) * (1.0 + w0 * t)
    w2 = w0 * math.sqrt(zeta * zeta - 1.0)
    return 1.0 - math.exp(-zeta * w0 * t) * (
        math.cosh(w2 * t) + (zeta * w0 / w2) * math.sinh(w2 * t)
    )


def spring_settle_frame(
    fps: float,
    stiffness: float = 100.0,
    damping: float = 10.0,
    mass: float = 1.0,
    delta: float = SPRING_REST_DELTA,
) -> int:
    """The first frame from which the spring stays within ``delta`` of 1 for ever.

    Uses the envelope of the oscillation, not the value itself, so a zero crossing of the
    overshoot is not mistaken for rest.
    """
    w0 = math.sqrt(stiffness / mass)
    zeta = damping / (2.0 * math.sqrt(stiffness * mass))
    if zeta <= 0:
        return 2**31 - 1  # undamped: never settles
    if zeta < 1.0:
        amplitude = 1.0 / math.sqrt(1.0 - zeta * zeta)
        t = math.log(amplitude / delta) / (zeta * w0)
        return max(0, math.ceil(t * fps))
    frame = 0
    while abs(1.0 - spring(frame, fps, stiffness, damping, mass)) >= delta:
        frame += 1  # monotone approach: the first frame within delta stays within it
    return frame


@dataclass(frozen=True, slots=True)
class FrameState:
    """What one frame shows. Equal states are identical pictures.

    ``offset_y`` is in 1080p pixels (downwards), ``scale`` is about the text box's centre and
    ``text`` is what is typed so far (all of it except for the typewriter).
    """

    opacity: float
    offset_y: float
    scale: float
    text: str
    cursor: bool

    @property
    def shown(self) -> str:
        """The string laid out for this frame, cursor included."""
        return self.text + CURSOR if self.cursor else self.text


def typed_count(frame: int, duration_in_frames: int, total: int) -> int:
    """n = floor(clamp(f / T) * N) with T = floor(0.8 D), in exact integer arithmetic."""
    typing_frames = math.floor(TYPEWRITER_FRACTION * duration_in_frames)
    if typing_frames <= 0 or frame >= typing_frames:
        return total
    return max(0, frame) * total // typing_frames


def frame_state(props: TextAnimationProps, frame: int) -> FrameState:
    """The state of ``frame`` (counted from 0) of the composition ``props`` describes."""
    if props.style == "fade-in":
        return FrameState(clamp(frame / FADE_FRAMES), 0.0, 1.0, props.text, False)
    if props.style == "slide-up":
        eased = ease_out_cubic(clamp(frame / FADE_FRAMES))
        return FrameState(eased, SLIDE_DISTANCE_PX * (1.0 - eased), 1.0, props.text, False)
    if props.style == "scale":
        if frame >= _settle_frame(props.fps):
            return FrameState(1.0, 0.0, 1.0, props.text, False)
        return FrameState(1.0, 0.0, spring(frame, props.fps), props.text, False)
    clusters = graphemes(props.text)
    n = typed_count(frame, props.duration_in_frames, len(clusters))
    cursor = (frame // CURSOR_BLINK_FRAMES) % 2 == 0 and n < len(clusters)
    return FrameState(1.0, 0.0, 1.0, "".join(clusters[:n]), cursor)


_SETTLE_CACHE: dict[int, int] = {}


def _settle_frame(fps: int) -> int:
    if fps not in _SETTLE_CACHE:
        _SETTLE_CACHE[fps] = spring_settle_frame(fps)
    return _SETTLE_CACHE[fps]
