"""TextAnimation props: every rule of the spec, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from renderlab.compositions import TextAnimationProps, grapheme_count

VALID: dict[str, Any] = {"text": "Hi", "style": "fade-in", "color": "#00FF7f"}


def fields_of(error: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in error.errors()}


def test_defaults() -> None:
    props = TextAnimationProps(**VALID)
    assert (props.font_family, props.font_size, props.duration_in_frames, props.fps) == (
        "Inter",
        48,
        90,
        30,
    )
    assert props.background_color is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("style", "bounce"),
        ("color", "red"),
        ("color", "#FFF"),
        ("color", "#GGGGGG"),
        ("background_color", "#12345"),
        ("text", ""),
        ("text", "x" * 501),
        ("font_size", 11),
        ("font_size", 201),
        ("font_size", "48"),
        ("duration_in_frames", 29),
        ("duration_in_frames", 601),
        ("duration_in_frames", 90.5),
        ("duration_in_frames", "90"),
        ("fps", 60),
        ("font_family", ""),
        ("font_family", "Inter\n"),
        ("text", 42),
        ("unknown_field", 1),
    ],
)
def test_bad_props_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as error:
        TextAnimationProps(**{**VALID, field: value})
    assert field in fields_of(error.value)


def test_missing_required_fields_are_named() -> None:
    with pytest.raises(ValidationError) as error:
        TextAnimationProps()  # type: ignore[call-arg]
    assert {"text", "style", "color"} <= fields_of(error.value)


def test_text_length_counts_grapheme_clusters() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one cluster, five code points
    assert grapheme_count(family) == 1
    TextAnimationProps(**{**VALID, "text": family * 500})
    with pytest.raises(ValidationError):
        TextAnimationProps(**{**VALID, "text": family * 501})
    assert grapheme_count("e\u0301") == 1
