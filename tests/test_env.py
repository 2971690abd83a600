"""Settings come from ``RENDERLAB_*`` variables as pydantic-settings read them before."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from renderlab.config import Settings
from renderlab.limits import Limits


def test_a_variable_fills_its_field_and_a_given_value_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENDERLAB_RENDERS_PER_HOUR", "7")
    monkeypatch.setenv("RENDERLAB_MAX_WIDTH", "1280")
    limits = Limits(max_width=640)
    assert (limits.renders_per_hour, limits.max_width) == (7, 640)


def test_names_are_compared_without_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("renderlab_workers", "3")
    assert Settings().workers == 3


def test_lists_are_json_and_a_bad_one_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENDERLAB_CORS_ORIGINS", '["https://app.example", "https://b.example"]')
    assert Settings().cors_origins == ["https://app.example", "https://b.example"]
    monkeypatch.setenv("RENDERLAB_CORS_ORIGINS", "https://app.example")
    with pytest.raises(ValidationError, match="RENDERLAB_CORS_ORIGINS must be JSON"):
        Settings()


def test_a_field_with_its_own_parser_gets_the_raw_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENDERLAB_WEBHOOK_RETRY_SCHEDULE_S", "5, 60,600")
    assert Limits().webhook_retry_schedule_s == (5, 60, 600)


def test_a_value_is_validated_like_any_other_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENDERLAB_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings()
    monkeypatch.setenv("RENDERLAB_LOG_FORMAT", "json")
    monkeypatch.setenv("RENDERLAB_METRICS", "false")
    settings = Settings()
    assert (settings.log_format, settings.metrics) == ("json", False)


def test_database_threads_follow_the_database_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = Limits()
    assert (limits.threads_for("sqlite"), limits.threads_for("postgresql")) == (1, 2)
    monkeypatch.setenv("RENDERLAB_API_DB_THREADS", "4")
    assert Limits().threads_for("sqlite") == 4
