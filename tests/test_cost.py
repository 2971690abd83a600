"""Renders that would not finish well inside the timeout are refused before any work.

``render.cost.estimate`` is pure (no fonts, no drawing); ``caps.check_render`` calls it with
the duration and size caps, raising the caps error the API answers with a 422.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from renderlab import caps
from renderlab.limits import Limits
from renderlab.render.chunks import picture_runs
from renderlab.render.cost import ENCODE_S, estimate
from renderlab.render.frames import FramePainter
from tests.render_helpers import props

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
BENCH_TYPEWRITER = "The quick brown fox jumps over the lazy dog. " * 2 + "." * 10
LIMITS = Limits()


def test_the_500_family_emoji_typewriter_is_refused_naming_what_to_shorten() -> None:
    heavy = props(text=FAMILY * 500, style="typewriter", font_size=200, duration_in_frames=600)
    with pytest.raises(caps.CapError) as refused:
        caps.check_render(heavy, 1920, 1080, LIMITS, "h264")
    assert refused.value.code == "render_too_costly"
    assert refused.value.field == "text"
    message = refused.value.message
    assert "shorten the text" in message and "font_size" in message
    assert "typewriter" in message and "emoji" in message


@pytest.mark.parametrize(
    "accepted",
    [
        {"text": "Hello from renderlab", "style": "fade-in", "font_size": 72},
        {"text": BENCH_TYPEWRITER, "style": "typewriter", "font_size": 72},
        {"text": "word " * 100, "style": "typewriter", "font_size": 48},
        {"text": "東京は日本の首都です" * 50, "style": "typewriter", "font_size": 120},
        {"text": FAMILY * 20, "style": "typewriter", "font_size": 200},
        {"text": FAMILY * 100, "style": "typewriter", "font_size": 48},
        {"text": "x" * 500, "style": "scale", "font_size": 200},
    ],
)
def test_ordinary_and_large_but_feasible_renders_are_accepted(accepted: dict) -> None:
    caps.check_render(props(duration_in_frames=600, **accepted), 1920, 1080, LIMITS, "h264")


def test_the_budget_follows_the_configured_timeout() -> None:
    p = props(text=FAMILY * 20, style="typewriter", font_size=200, duration_in_frames=600)
    caps.check_render(p, 1920, 1080, LIMITS, "h264")
    with pytest.raises(caps.CapError):
        caps.check_render(p, 1920, 1080, Limits(render_timeout_ms=10_000), "h264")
    assert Limits().render_cost_budget_s == pytest.approx(20.0)
    assert Limits(render_cost_budget_ms=5000).render_cost_budget_s == pytest.approx(5.0)


# 500 characters typed at 12 px: 481 distinct pictures. As MP4 about 1.3 s here; as WebM
# 12.6 s and as ProRes 44 s, the last timing out beside a second render (a fresh-eyes run).
WORDS = {"text": ("word " * 100).strip(), "style": "typewriter", "font_size": 12}


def test_a_codec_that_encodes_every_picture_whole_is_counted_and_named() -> None:
    p = props(duration_in_frames=600, **WORDS)
    caps.check_render(p, 1920, 1080, LIMITS, "h264")
    caps.check_render(p, 1920, 1080, LIMITS, "gif")
    with pytest.raises(caps.CapError) as refused:
        caps.check_render(p, 1920, 1080, LIMITS, "prores")
    assert (refused.value.code, refused.value.field) == ("render_too_costly", "codec")
    message = refused.value.message
    assert message.startswith("Render too costly: about ")
    assert "use codec h264 (prores encodes each distinct picture whole" in message
    assert "shorten the text" in message
    caps.check_render(p, 960, 540, LIMITS, "vp9")  # a quarter of the pixels to encode
    fewer = props(duration_in_frames=600, **{**WORDS, "style": "fade-in"})
    for codec in caps.CODECS:  # a few distinct pictures: any codec
        caps.check_render(fewer, 1920, 1080, LIMITS, codec)


def test_every_codec_has_an_encoder_cost() -> None:
    assert set(ENCODE_S) == set(caps.CODECS)
    p = props(duration_in_frames=600, **WORDS)
    seconds = {codec: estimate(p, 1920, 1080, codec).seconds for codec in caps.CODECS}
    assert seconds["gif"] < seconds["h264"] < seconds["vp9"] < seconds["prores"]


def test_the_other_caps_still_come_first() -> None:
    p = props(text="ok", style="fade-in")
    with pytest.raises(caps.CapError) as refused:
        caps.check_render(p, 3840, 2160, LIMITS, "h264")
    assert refused.value.code == "resolution_too_large"


@pytest.mark.parametrize(
    "style_props",
    [
        {"style": "typewriter", "text": "Hello there, typewriter", "duration_in_frames": 200},
        {"style": "fade-in", "text": "fade", "duration_in_frames": 120},
        {"style": "slide-up", "text": "slide", "duration_in_frames": 120},
        {"style": "scale", "text": "scale", "duration_in_frames": 120},
    ],
)
def test_the_estimate_counts_at_least_the_pictures_the_encoder_gets(style_props: dict) -> None:
    """The work bound behind the estimate: pictures encoded, never more than estimated."""
    p = props(**style_props)
    for width, height in ((1920, 1080), (640, 360)):
        painter = FramePainter(p, width, height)
        encoded = len(picture_runs(painter, 0, p.duration_in_frames))
        found = estimate(p, width, height, "h264")
        assert encoded <= found.pictures <= encoded + 2


def test_more_text_or_larger_type_never_costs_less() -> None:
    def seconds(**values: object) -> float:
        base = {"style": "typewriter", "duration_in_frames": 600, "font_size": 100}
        return estimate(props(**{**base, **values}), 1920, 1080, "h264").seconds

    assert seconds(text=FAMILY * 10) < seconds(text=FAMILY * 40) < seconds(text=FAMILY * 160)
    assert seconds(text="ab " * 50, font_size=24) < seconds(text="ab " * 50, font_size=150)
    assert seconds(text="mw " * 40) < seconds(text=(FAMILY + " ") * 40)  # same clusters


def test_the_estimate_opens_no_font_and_loads_no_renderer() -> None:
    code = (
        "import json, sys\n"
        "from renderlab.compositions.props import TextAnimationProps\n"
        "from renderlab.render.cost import estimate\n"
        f"p = TextAnimationProps(text={FAMILY * 50!r}, style='typewriter', color='#FFFFFF')\n"
        "estimate(p, 1920, 1080, 'prores')\n"
        "print(json.dumps([m for m in ('av', 'numpy', 'PIL', 'fontpkg') if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout) == []


def test_equal_props_are_estimated_once() -> None:
    """Every render start checks the cost; the same generation started again (equal props,
    read back from the database as a new object) reuses the first estimate."""
    base = {"text": "Cached " * 20, "style": "typewriter", "duration_in_frames": 321}
    before = estimate.cache_info()
    first = estimate(props(**base), 1280, 720, "vp9")
    again = estimate(props(**base), 1280, 720, "vp9")
    after = estimate.cache_info()
    assert again is first
    assert after.hits - before.hits == 1
    assert estimate(props(**base), 1920, 1080, "vp9") is not first  # the size is in the key
    assert estimate(props(**base), 1280, 720, "h264") is not first  # and so is the codec
