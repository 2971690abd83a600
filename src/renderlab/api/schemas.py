"""The shapes of the HTTP API (``docs/api.md``): request bodies, response objects, errors.

Request bodies forbid unknown fields, so a misspelt option is a 422 naming it instead of being
silently ignored. Responses convert the database's epoch milliseconds to RFC 3339 UTC strings
and show the caller's token identifier as ``user_id`` (the id the contract and the seed use),
never the internal row id.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from renderlab.clock import ms_to_rfc3339
from renderlab.compositions import TextAnimationProps

RenderStatus = Literal["pending", "rendering", "complete", "failed"]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    codec: str
    duration_in_frames: int

    @classmethod
    def of(cls, render: Any, token_identifier: str, output_url: str | None = None) -> RenderOut:
        """From an ORM ``Render`` or an events ``RenderSnapshot`` (same attribute names);
        ``output_url`` is the URL signed for this read (none is stored)."""
        return cls.model_construct(
            id=render.id,
            user_id=token_identifier,
            generation_id=render.generation_id,
            render_id=render.job_id,
            bucket_name=render.bucket_name,
            status=render.status,
            progress=render.progress,
            output_url=output_url,
            output_size=render.output_size,
            error=render.error,
            created_at=ms_to_rfc3339(render.created_at) or "",
            completed_at=ms_to_rfc3339(render.completed_at),
            width=render.width,
            height=render.height,
            fps=render.fps,
            codec=render.codec,
            duration_in_frames=render.duration_in_frames,
        )


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


class GenerationPage(BaseModel):
    items: list[GenerationOut]
    next_cursor: str | None


# -- renders ----------------------------------------------------------------------------------


class RenderCreate(RequestBody):
    generation_id: str
    width: int | None = Field(None, description="Even, within the size cap; default 1920.")
    height: int | None = Field(None, description="Even, within the size cap; default 1080.")
    codec: str = Field("h264", description="Only h264 for now.")


class RenderPage(BaseModel):
    items: list[RenderOut]
    next_cursor: str | None


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
    name: str = Field(description="Who you are in zero-setup mode, e.g. 'alice'.")


class TokenOut(BaseModel):
    token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_at: str


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]


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
