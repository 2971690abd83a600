"""The native renderer: TextAnimation props to H.264 MP4, VP9 WebM, ProRes MOV, GIF and PNG.

Public API (no database, queue or HTTP knowledge in here):

* :func:`render_video` - a whole render in a codec, optionally chunked over a process pool.
* :func:`plan_chunks`, :func:`render_chunk`, :func:`join_segments` - the pieces, for workers
  that render chunks on their own and join the segments (codecs whose descriptor is
  ``joinable``; the others are one chunk of the whole range).
* :func:`get_format`, :data:`FORMATS`, :func:`codec_for_output` - the per-codec descriptors
  (extension, Content-Type, container, pixel formats, alpha, joinable).
* :func:`render_warnings` - what a codec loses of some props (h264 and transparency).
* :func:`render_still` - one frame as PNG; :func:`render_poster` - a render's poster PNG.
* :func:`validate_size`, :func:`check_render` - checks made before any drawing; they raise
  :class:`renderlab.caps.CapError`.

The names are loaded on first use (PEP 562), so importing a light submodule such as
:mod:`renderlab.render.cost` (the caps check) does not load PyAV, numpy and Pillow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from renderlab.render.chunks import join_segments, plan_chunks, render_chunk
    from renderlab.render.encode import DEFAULT_CRF, DEFAULT_PRESET, ProgressCallback
    from renderlab.render.formats import (
        FORMATS,
        OutputFormat,
        codec_for_output,
        get_format,
        render_warnings,
    )
    from renderlab.render.settings import (
        check_render,
        validate_crf,
        validate_duration,
        validate_frame,
        validate_size,
    )
    from renderlab.render.video import RenderResult, render_poster, render_still, render_video

_SOURCES = {
    "join_segments": "chunks",
    "plan_chunks": "chunks",
    "render_chunk": "chunks",
    "DEFAULT_CRF": "encode",
    "DEFAULT_PRESET": "encode",
    "ProgressCallback": "encode",
    "FORMATS": "formats",
    "OutputFormat": "formats",
    "codec_for_output": "formats",
    "get_format": "formats",
    "render_warnings": "formats",
    "check_render": "settings",
    "validate_crf": "settings",
    "validate_duration": "settings",
    "validate_frame": "settings",
    "validate_size": "settings",
    "RenderResult": "video",
    "render_poster": "video",
    "render_still": "video",
    "render_video": "video",
}

__all__ = [
    "DEFAULT_CRF",
    "DEFAULT_PRESET",
    "FORMATS",
    "OutputFormat",
    "ProgressCallback",
    "RenderResult",
    "check_render",
    "codec_for_output",
    "get_format",
    "join_segments",
    "plan_chunks",
    "render_chunk",
    "render_poster",
    "render_still",
    "render_video",
    "render_warnings",
    "validate_crf",
    "validate_duration",
    "validate_frame",
    "validate_size",
]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{source}"), name)
    globals()[name] = value
    return value
