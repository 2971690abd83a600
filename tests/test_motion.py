"""The motion math against the spec's numbers (spec/text-animation.md, Motion)."""

from __future__ import annotations

import pytest

from renderlab.compositions import FrameState, frame_state
from renderlab.compositions.motion import (
    clamp,
    ease_out_cubic,
    interpolate,
    spring,
    spring_settle_frame,
    typed_count,
)
from tests.render_helpers import props

SPRING_REFERENCE = {
    1: 0.049415,
    3: 0.340300,
    5: 0.695892,
    11: 1.162911,
    15: 1.074591,
    30: 1.002170,
}


@pytest.mark.parametrize(("frame", "expected"), sorted(SPRING_REFERENCE.items()))
def test_spring_matches_the_spec_reference_values(frame: int, expected: float) -> None:
    assert spring(frame, 30) == pytest.approx(expected, abs=1e-6)


def test_spring_starts_at_rest_overshoots_at_frame_11_and_settles() -> None:
    assert spring(0, 30) == 0.0
    values = [spring(f, 30) for f in range(0, 90)]
    assert max(values) == pytest.approx(1.162911, abs=1e-6)
    assert values.index(max(values)) == 11
    assert spring(300, 30) == pytest.approx(1.0, abs=1e-12)


def test_spring_other_damping_regimes_are_monotone_and_reach_one() -> None:
    for damping in (20.0, 40.0):  # critical, overdamped (k = 100, m = 1)
        values = [spring(f, 30, damping=damping) for f in range(120)]
        assert values == sorted(values)
        assert values[-1] == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError):
        spring(1, 30, stiffness=0)


def test_clamp_interpolate_and_ease() -> None:
    assert clamp(-0.5) == 0.0 and clamp(1.5) == 1.0 and clamp(0.25) == 0.25
    assert interpolate(15, (0, 30), (0, 1)) == 0.5
    assert interpolate(45, (0, 30), (0, 1)) == 1.0
    assert interpolate(-5, (0, 30), (0, 1)) == 0.0
    assert interpolate(45, (0, 30), (0, 1), clamp_output=False) == 1.5
    assert interpolate(10, (0, 20), (100, 0)) == 50.0
    assert ease_out_cubic(0.0) == 0.0 and ease_out_cubic(1.0) == 1.0
    assert ease_out_cubic(0.5) == pytest.approx(0.875)
    with pytest.raises(ValueError):
        interpolate(1, (2, 2), (0, 1))


def test_fade_in() -> None:
    p = props(style="fade-in", duration_in_frames=90)
    assert frame_state(p, 0).opacity == 0.0
    assert frame_state(p, 15).opacity == 0.5
    assert frame_state(p, 30) == frame_state(p, 89)
    assert frame_state(p, 30).opacity == 1.0
    assert frame_state(p, 10).offset_y == 0.0 and frame_state(p, 10).scale == 1.0


def test_slide_up() -> None:
    p = props(style="slide-up")
    first, mid, rest = frame_state(p, 0), frame_state(p, 15), frame_state(p, 30)
    assert (first.offset_y, first.opacity) == (100.0, 0.0)
    assert mid.opacity == pytest.approx(0.875)
    assert mid.offset_y == pytest.approx(12.5)
    assert (rest.offset_y, rest.opacity) == (0.0, 1.0)


def test_scale_follows_the_spring_then_is_exactly_one() -> None:
    p = props(style="scale", duration_in_frames=120)
    assert frame_state(p, 11).scale == pytest.approx(1.162911, abs=1e-6)
    settle = spring_settle_frame(30)
    assert 40 <= settle <= 70
    for f in range(settle):
        assert frame_state(p, f).scale == spring(f, 30)
    for f in range(settle, 120):
        assert frame_state(p, f).scale == 1.0
        assert abs(spring(f, 30) - 1.0) < 1e-4


def test_typewriter_counts_grapheme_clusters_and_blinks() -> None:
    text = "e\u0301👨‍👩‍👧ab"  # 4 clusters: é (combining), a ZWJ family, a, b
    p = props(style="typewriter", text=text, duration_in_frames=100)  # T = 80
    assert frame_state(p, 0) == FrameState(1.0, 0.0, 1.0, "", True)
    assert frame_state(p, 20).text == "e\u0301"  # floor(20/80*4) = 1
    assert frame_state(p, 40).text == "e\u0301👨‍👩‍👧"
    assert frame_state(p, 15).cursor is False  # floor(15/15) = 1: odd
    assert frame_state(p, 30).cursor is True
    done = frame_state(p, 80)
    assert done.text == text and done.cursor is False
    assert done.shown == text
    assert frame_state(p, 30).shown.endswith("|")
    assert typed_count(79, 100, 4) == 3 and typed_count(80, 100, 4) == 4


def test_distinct_pictures_in_600_frames() -> None:
    counts = {}
    for style in ("fade-in", "slide-up", "scale"):
        p = props(style=style, duration_in_frames=600)
        counts[style] = len({frame_state(p, f) for f in range(600)})
    assert counts["fade-in"] == 31
    assert counts["slide-up"] == 31
    assert counts["scale"] <= 60


def test_frame_state_is_hashable_and_frozen() -> None:
    state = frame_state(props(), 3)
    assert hash(state) == hash(frame_state(props(), 3))
    with pytest.raises(AttributeError):
        state.opacity = 1.0  # type: ignore[misc]
