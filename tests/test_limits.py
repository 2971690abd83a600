"""Every limit has the seed's default and can be overridden from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from renderlab.caps import default_size
from renderlab.limits import Limits


def test_seed_defaults() -> None:
    limits = Limits()
    assert (limits.renders_per_hour, limits.rate_window_ms) == (5, 3_600_000)
    assert (limits.max_width, limits.max_height) == (1920, 1080)
    assert (limits.max_duration_seconds, limits.max_duration_frames) == (20, 600)
    assert (limits.render_timeout_ms, limits.poll_interval_ms) == (60_000, 2_000)
    assert limits.max_frames_at(30) == 600


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENDERLAB_RENDERS_PER_HOUR", "9")
    monkeypatch.setenv("RENDERLAB_MAX_WIDTH", "1280")
    monkeypatch.setenv("RENDERLAB_MAX_HEIGHT", "720")
    monkeypatch.setenv("RENDERLAB_MAX_DURATION_SECONDS", "10")
    limits = Limits()
    assert limits.renders_per_hour == 9
    assert limits.max_frames_at(30) == 300
    size = default_size(limits)
    assert (size.width, size.height) == (1280, 720)


def test_nonsense_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENDERLAB_RENDERS_PER_HOUR", "0")
    with pytest.raises(ValidationError, match="renders_per_hour"):
        Limits()
