"""The shapes of the HTTP API (``docs/api.md``): request bodies, response objects, errors.

Request bodies forbid unknown fields, so a misspelt option is a 422 naming it instead of being
silently ignored. They are strict as the props are (``"width": "320"`` or ``1920.0`` is a 422,
not a coerced 320 that also costs a quota slot), and every string in them, free-form objects
included, must be one the database can store and give back (:mod:`renderlab.strings`).
Responses convert the database's epoch milliseconds to RFC 3339 UTC strings
and show the caller's token identifier as ``user_id`` (the id the contract and the seed use),
never the internal row id.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import JsonDict

from renderlab.caps import CODECS
from renderlab.clock import ms_to_rfc3339
from renderlab.compositions import TextAnimationProps
from renderlab.limits import Limits
from renderlab.pipeline.render_object import render_fields
from renderlab.store.generations import CACHED_GENERATIONS
from renderlab.strings import storable, unstorable_paths

MAX_DURATION_FRAMES = 600  # TextAnimationProps.duration_in_frames' upper bound
METADATA_MAX_BYTES = 1024

RenderStatus = Literal["pending", "rendering", "complete", "failed"]
MAX_METADATA_BYTES = 1024
"""The contract's bound on ``metadata``, serialised as compact JSON."""


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _storable_keys(cls, data: Any) -> Any:
        # An unknown key is refused by name, and a name that cannot be encoded cannot be
        # named: refuse it as the body's fault first.
        if isinstance(data, dict):
            for key in data:
                problem = storable(key) if isinstance(key, str) else None
                if problem is not None:
                    raise ValueError(f"a field name {problem}")
        return data

    @field_validator("*")
    @classmethod
    def _storable_strings(cls, value: Any) -> Any:
        for path, problem in unstorable_paths(value):
            raise ValueError(f"{path}: {problem}" if path else problem)
        return value


# -- generations ------------------------------------------------------------------------------


class GenerationCreate(RequestBody):
    prompt: str | None = Field(None, description="The prompt the props were generated from.")
    animation_props: TextAnimationProps


class RenderOut(BaseModel):
    """The render object (contract: "The render object")."""

    id: str
    user_id: str
    generation_id: str
    render_id: str | None = Field(description="The job id on the render backend.")
    bucket_name: str | None
    status: RenderStatus
    progress: int = Field(ge=0, le=100)
    output_url: str | None = Field(description="Signed download URL, present when complete.")
    output_size: int | None = Field(description="Bytes of the MP4, when complete.")
    error: str | None = Field(description="Why the render failed, when it failed.")
    created_at: str
    completed_at: str | None
    width: int
    height: int
    fps: int
    codec: str = Field(description="h264 (MP4), vp9 (WebM), prores (MOV) or gif.")
    duration_in_frames: int
    poster_frame: int | None = Field(description="The poster's frame; null: the last frame.")
    poster_url: str | None = Field(
        description="Signed PNG of the poster frame at the render's size (alpha kept), present "
        "when complete and not expired."
    )
    metadata: dict[str, Any] | None = Field(description="The caller's object, echoed.")
    webhook_url: str | None = Field(description="Told when the render ends.")
    warnings: list[str] = Field(description="Sentences about what the output loses.")
    error_code: str | None = Field(
        description="When failed: cancelled, timed_out, worker_lost, storage_failed, "
        "invalid_props or render_failed."
    )
    expires_at: str | None = Field(description="When retention deletes the output; null: kept.")
    output_expired: bool = Field(description="True once the output is gone (expired, deleted).")

    @classmethod
    def of(cls, render: Any, token_identifier: str, urls: Any = None) -> RenderOut:
        """From an ORM ``Render`` or an events ``RenderSnapshot`` (same attribute names);
        ``urls`` (``output_url``, ``poster_url``) are signed for this read (none is stored).
        The fields come from :func:`renderlab.pipeline.render_object.render_fields`, which
        the webhook events use too."""
        return cls.model_construct(**render_fields(render, token_identifier, urls))


class GenerationOut(BaseModel):
    id: str
    user_id: str
    prompt: str | None
    animation_props: TextAnimationProps
    status: Literal["pending", "complete", "failed"]
    created_at: str
    latest_render: RenderOut | None = Field(
        description="The newest render of this generation, or null (an extension: one request "
        "fills a history page)."
    )

    @classmethod
    def of(cls, generation: Any, token_identifier: str, latest: RenderOut | None) -> GenerationOut:
        return cls.model_construct(
            id=generation.id,
            user_id=token_identifier,
            prompt=generation.prompt,
            animation_props=TextAnimationProps.model_construct(**generation.animation_props),
            status=generation.status,
            created_at=ms_to_rfc3339(generation.created_at) or "",
            latest_render=latest,
        )

    @classmethod
    def json_of(cls, generation: Any, token_identifier: str, latest: RenderOut | None) -> bytes:
        """``of(...).model_dump_json()`` for a generation read as ``GenerationSnapshot``
        (``animation_props`` the stored JSON text), byte for byte, with the generation's part
        serialised once: a generation never changes after it is stored, and its read is the
        render read plus that part (its props parsed and rebuilt were a third of the gap)."""
        head = _generation_head(
            generation.id,
            token_identifier,
            generation.prompt,
            generation.animation_props,
            generation.status,
            generation.created_at,
        )
        tail = b"null" if latest is None else latest.__pydantic_serializer__.to_json(latest)
        return head + tail + b"}"


_NULL_TAIL = b'"latest_render":null}'


@functools.lru_cache(maxsize=CACHED_GENERATIONS)
def _generation_head(
    id: str, token_identifier: str, prompt: str | None, props: str, status: str, created_at: int
) -> bytes:
    """A generation's JSON up to its ``latest_render`` value (the object's last field)."""
    row = _StoredGeneration(id, prompt, json.loads(props), status, created_at)
    whole = GenerationOut.of(row, token_identifier, None)
    body = whole.__pydantic_serializer__.to_json(whole)
    if not body.endswith(_NULL_TAIL):  # a field added after latest_render would break this
        raise AssertionError("latest_render must stay GenerationOut's last field")
    return body[: -len(b"null}")]


@dataclass(frozen=True, slots=True)
class _StoredGeneration:
    id: str
    prompt: str | None
    animation_props: dict[str, Any]
    status: str
    created_at: int


class GenerationPage(BaseModel):
    items: list[GenerationOut]
    next_cursor: str | None


# -- renders ----------------------------------------------------------------------------------


# What the server enforces, said in the document too so that clients (and schemathesis) can
# send valid requests. Only ``json_schema_extra``: the checks themselves stay where they are
# (caps, the route), with their own error codes. The size bounds are the default caps
# (``RENDERLAB_MAX_WIDTH``/``_HEIGHT``): either side may be up to the long cap (portrait).
_DEFAULTS = Limits()
_SIDE: JsonDict = {
    "minimum": _DEFAULTS.min_dimension,
    "maximum": max(_DEFAULTS.max_width, _DEFAULTS.max_height),
    "multipleOf": 2,
}


class RenderCreate(RequestBody):
    """A stored generation (``generation_id``) or new props (``animation_props``, with an
    optional ``prompt``) stored in the same transaction as the render: exactly one of the two
    (checked by the route, so the 422 names the field)."""

    generation_id: str | None = Field(None, description="The stored generation to render.")
    animation_props: TextAnimationProps | None = Field(
        None, description="New props to render in one request (instead of generation_id)."
    )
    prompt: str | None = Field(
        None, description="With animation_props: the prompt they were generated from."
    )
    width: int | None = Field(
        None,
        description="Even, within the size cap, the composition's aspect; default its own.",
        json_schema_extra=_SIDE,
    )
    height: int | None = Field(
        None,
        description="Even, within the size cap, the composition's aspect; default its own.",
        json_schema_extra=_SIDE,
    )
    codec: str = Field(
        "h264",
        description="h264 (MP4), vp9 (WebM), prores (MOV, ProRes 4444) or gif.",
        json_schema_extra={"enum": list(CODECS)},
    )
    poster_frame: int | None = Field(
        None,
        ge=0,
        description="The frame of the poster image, below the animation's duration_in_frames; "
        "default the last frame.",
        json_schema_extra={"maximum": MAX_DURATION_FRAMES - 1},
    )
    webhook_url: str | None = Field(
        None,
        max_length=2048,
        description="http(s) URL told when the render ends (Standard Webhooks); a host that is "
        "or resolves to a private address is a 422 invalid_webhook_url.",
    )
    metadata: dict[str, Any] | None = Field(
        None,
        description="Any JSON object up to 1 KiB serialised; echoed in the render object.",
        json_schema_extra={"x-max-serialized-bytes": METADATA_MAX_BYTES},
    )

    @field_validator("metadata")
    @classmethod
    def _small_json(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
            except ValueError:
                raise ValueError("metadata must be plain JSON (no NaN or Infinity)") from None
            if size > MAX_METADATA_BYTES:
                raise ValueError(
                    f"metadata is {size} bytes serialised; at most {MAX_METADATA_BYTES} allowed"
                )
        return value


class RenderPage(BaseModel):
    items: list[RenderOut]
    next_cursor: str | None


class DownloadURLRequest(RequestBody):
    """The optional body of ``POST /v1/renders/{id}/download-url``."""

    disposition: Literal["attachment", "inline"] = Field(
        "attachment",
        description="attachment: the browser saves the file; inline: it shows it (a video tag, "
        "a new tab).",
    )
    filename: str | None = Field(
        None,
        min_length=1,
        max_length=150,
        description="The download's name, cleaned of path separators, quotes and control "
        "characters; its extension is always the codec's (`.mp4`, `.webm`, `.mov`, `.gif`). "
        "Default `render-<id>.<ext>`.",
    )


class WebhookDeliveryOut(BaseModel):
    event_id: str = Field(description="The event's webhook-id, the same on every retry.")
    type: Literal["render.completed", "render.failed"]
    attempt: int = Field(ge=1, description="1 for the first try.")
    status_code: int | None = Field(description="The receiver's HTTP status; null: no answer.")
    error: str | None = Field(description="Why the attempt failed; null when it succeeded.")
    at: str


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDeliveryOut] = Field(description="Newest first.")


class DownloadURLOut(BaseModel):
    url: str
    expires_at: str


# -- quota, auth, health ----------------------------------------------------------------------


class QuotaOut(BaseModel):
    limit: int
    remaining: int
    retry_after_ms: int | None
    resets_at: str | None


class TokenRequest(RequestBody):
    name: str = Field(
        description="Who you are in zero-setup mode, e.g. 'alice': printable, stripped of "
        "surrounding spaces.",
        json_schema_extra={
            "minLength": 1,
            "maxLength": _DEFAULTS.token_name_max_chars,
            "pattern": r"\S",
        },
    )


class TokenOut(BaseModel):
    token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_at: str


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]
    auth: Literal["dev", "hs256", "jwks"] = Field(
        description="The identity mode (RENDERLAB_AUTH): `dev` lets anyone sign in with a name."
    )


# -- errors -----------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the failing field, e.g. animation_props.text")
    location: Literal["body", "query", "path", "header"] = Field(
        description="Where the field was sent."
    )
    message: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    fields: list[FieldError] | None = Field(None, description="With invalid_request and caps.")
    retry_after_ms: int | None = Field(None, description="With rate_limited.")


class ErrorResponse(BaseModel):
    error: ErrorDetail
