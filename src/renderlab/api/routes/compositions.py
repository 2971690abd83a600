"""``GET /v1/compositions``: each composition and the JSON Schema of its props, for an app's
prompt step (an LLM's structured output, a form builder).

The schema is generated from the props model the API validates with, then narrowed by the
caps in force (``RENDERLAB_MAX_DURATION_*``), so it says what a render would accept today.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from renderlab.api.auth import Principal
from renderlab.api.context import ApiContext
from renderlab.api.routes import json_response, route
from renderlab.compositions import TextAnimationProps
from renderlab.compositions.props import MAX_TEXT_GRAPHEMES
from renderlab.limits import Limits

TEXT_ANIMATION = "text-animation"
DESCRIPTION = (
    "A line of text animated in (fade-in, typewriter, slide-up or scale) over a solid or "
    "transparent background, 30 fps, 1920x1080 scaled to the render size."
)


class CompositionOut(BaseModel):
    id: str
    description: str
    props_schema: dict[str, Any] = Field(description="JSON Schema (2020-12) of the props.")


class CompositionsOut(BaseModel):
    items: list[CompositionOut]


def props_schema(limits: Limits) -> dict[str, Any]:
    """The props model's JSON Schema with the caps in force; what JSON Schema cannot say
    (text counted in user-perceived characters) is said in the descriptions."""
    schema = TextAnimationProps.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    fields = schema["properties"]
    fps = TextAnimationProps.model_fields["fps"].default
    duration = fields["duration_in_frames"]
    duration["maximum"] = min(duration["maximum"], limits.max_frames_at(fps))
    duration["description"] = (
        f"Frames at {fps} fps; at most {limits.max_duration_seconds} s "
        f"({duration['maximum']} frames) with the caps in force."
    )
    fields["text"]["minLength"] = 1
    fields["text"]["description"] = (
        f"1 to {MAX_TEXT_GRAPHEMES} user-perceived characters (grapheme clusters), not only "
        "whitespace or invisible characters."
    )
    fields["font_family"]["description"] = "A printable font family name, e.g. Inter."
    return schema


def router(ctx: ApiContext) -> APIRouter:
    Me = Annotated[Principal, Depends(ctx.current_principal)]
    api = APIRouter(tags=["compositions"])

    summary = "The compositions and the JSON Schema of their props"

    @route(api.get, "/v1/compositions", summary, response_model=CompositionsOut)
    async def list_compositions(me: Me) -> Response:
        item = CompositionOut(
            id=TEXT_ANIMATION, description=DESCRIPTION, props_schema=props_schema(ctx.limits)
        )
        return json_response(CompositionsOut(items=[item]))

    return api
