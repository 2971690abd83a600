"""Settings models filled from ``RENDERLAB_*`` environment variables.

What renderlab used of pydantic-settings, on plain pydantic: each field is read from
``RENDERLAB_<FIELD>`` (names compared case-insensitively, as pydantic-settings does), values
given to the constructor win over the environment, list and dict fields are JSON
(``RENDERLAB_CORS_ORIGINS='["https://app.example"]'``) unless marked :class:`NoDecode`, and
every value is then validated by the model like any other input. pydantic-settings cost
140 ms of every process here (``import renderlab.limits``: 603 -> 461 ms; it loads asyncio,
ssl and its cloud secret providers), which every ``renderlab render`` process and every
worker start paid for 20 lines of its work.
"""

from __future__ import annotations

import json
import os
import re
import types
import typing
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

PREFIX = "RENDERLAB_"


class NoDecode:
    """Marks a field (``Annotated[tuple[int, ...], NoDecode]``) whose variable its own
    validator parses, so it is handed over as the raw string rather than as JSON."""


class EnvSettings(BaseModel):
    """A model whose fields default to their ``RENDERLAB_*`` variables."""

    model_config = ConfigDict(extra="ignore")
    env_prefix: ClassVar[str] = PREFIX

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, given: Any) -> Any:
        if not isinstance(given, dict):
            return given
        prefix = cls.env_prefix.lower()
        environ = {k.lower(): v for k, v in os.environ.items() if k.lower().startswith(prefix)}
        values = dict(given)
        for name, field in cls.model_fields.items():
            raw = environ.get(prefix + name)
            if name in values or raw is None:
                continue
            variable = cls.env_prefix + name.upper()
            values[name] = _decoded(variable, raw, field.annotation, field.metadata)
        return values


def invalid_environment(exc: Exception) -> list[str] | None:
    """What is wrong with the environment, one line a variable, when ``exc`` is a settings
    model's validation error (``RENDERLAB_RENDERS_PER_HOUR='abc': Input should be a valid
    integer, ...``); None for any other exception. A command prints these and exits, where it
    would otherwise show the traceback of a model built at start-up."""
    models = {model.__name__: model for model in EnvSettings.__subclasses__()}
    model = models.get(getattr(exc, "title", ""))
    if not isinstance(exc, ValidationError) or model is None:
        return None
    lines = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            name = str(error["loc"][0])
            variable = model.env_prefix + name.upper()
            lines.append(f"{variable}={error['input']!r}: {message}")
            continue
        for name in model.model_fields:  # a rule between fields: name their variables
            message = re.sub(rf"\b{name}\b", model.env_prefix + name.upper(), message)
        lines.append(message)
    return lines


def _decoded(variable: str, raw: str, annotation: Any, metadata: list[Any]) -> Any:
    """The variable's value as the field takes it: JSON for lists and dicts, else the string."""
    if NoDecode in metadata or not _is_collection(annotation):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f'{variable} must be JSON ({exc.msg}), e.g. \'["a", "b"]\'') from None


def _is_collection(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    if origin is typing.Union or origin is types.UnionType:
        return any(_is_collection(arg) for arg in typing.get_args(annotation))
    return isinstance(origin, type) and issubclass(origin, (list, tuple, set, dict))
