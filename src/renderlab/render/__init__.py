"""The native renderer: TextAnimation props to H.264 MP4 and PNG stills.

Public API (no database, queue or HTTP knowledge in here):

* :func:`render_video` - a whole render, optionally chunked over a process pool.
* :func:`plan_chunks`, :func:`render_chunk`, :func:`join_segments` - the pieces, for workers
  that render chunks on their own and join the segments.
* :func:`render_still` - one frame as PNG.
* :func:`validate_size` and :class:`RenderSettingsError` - checks made before any drawing.
"""

from renderlab.render.chunks import join_segments, plan_chunks, render_chunk
from renderlab.render.encode import DEFAULT_CRF, DEFAULT_PRESET, ProgressCallback
from renderlab.render.settings import (
    RenderSettingsError,
    check_render,
    validate_crf,
    validate_duration,
    validate_frame,
    validate_size,
)
from renderlab.render.video import RenderResult, render_still, render_video

__all__ = [
    "DEFAULT_CRF",
    "DEFAULT_PRESET",
    "ProgressCallback",
    "RenderResult",
    "RenderSettingsError",
    "check_render",
    "join_segments",
    "plan_chunks",
    "render_chunk",
    "render_still",
    "render_video",
    "validate_crf",
    "validate_duration",
    "validate_frame",
    "validate_size",
]
