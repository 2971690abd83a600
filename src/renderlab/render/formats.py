"""The output formats, one descriptor per codec (Remotion's names), and what each loses.

Everything that differs between formats is in :data:`FORMATS`: file extension, Content-Type,
container, pixel formats, whether it carries alpha, and whether segments rendered apart can be
joined by stream copy (when not, the pipeline renders the whole range in one piece). This
module imports no encoder, so the API can describe formats without loading the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from renderlab.caps import CODECS, CapError
from renderlab.compositions.props import TextAnimationProps


@dataclass(frozen=True)
class OutputFormat:
    """How one codec is written: ``pix_fmt`` for an opaque background, ``alpha_pix_fmt`` for a
    transparent one (None: the format has no alpha and the background is black)."""

    codec: str
    extension: str
    content_type: str
    container: str
    encoder: str
    pix_fmt: str
    alpha_pix_fmt: str | None
    joinable: bool
    description: str

    @property
    def carries_alpha(self) -> bool:
        return self.alpha_pix_fmt is not None

    def pixel_format(self, transparent: bool) -> str:
        """The pixel format a render uses: with alpha when the background is transparent."""
        if transparent and self.alpha_pix_fmt is not None:
            return self.alpha_pix_fmt
        return self.pix_fmt


FORMATS: dict[str, OutputFormat] = {
    "h264": OutputFormat(
        "h264", ".mp4", "video/mp4", "mp4", "libx264", "yuv420p", None, True, "H.264 MP4"
    ),
    "vp9": OutputFormat(
        "vp9",
        ".webm",
        "video/webm",
        "webm",
        "libvpx-vp9",
        "yuv420p",
        "yuva420p",
        False,  # segments would join, but libvpx's rate control is per stream: render it whole
        "VP9 WebM",
    ),
    "prores": OutputFormat(
        "prores",
        ".mov",
        "video/quicktime",
        "mov",
        "prores_ks",
        "yuv444p10le",
        "yuva444p10le",
        True,  # intra-only: every packet is a keyframe, any cut joins by stream copy
        "ProRes 4444 MOV",
    ),
    "gif": OutputFormat(
        "gif", ".gif", "image/gif", "gif", "pillow", "P", "P", False, "animated GIF (looping)"
    ),
}
assert tuple(FORMATS) == CODECS, "caps.CODECS lists the codecs of this table"


def get_format(codec: str) -> OutputFormat:
    """The descriptor of ``codec``; an unknown one is a :class:`CapError` naming ``codec``."""
    if not isinstance(codec, str) or codec not in FORMATS:
        names = ", ".join(FORMATS)
        raise CapError("codec", f"Unsupported codec {codec!r}; use one of {names}.")
    return FORMATS[codec]


def format_for_path(path: str | Path) -> OutputFormat | None:
    """The format whose extension ``path`` has (case-insensitive), or None."""
    suffix = Path(path).suffix.lower()
    return next((f for f in FORMATS.values() if f.extension == suffix), None)


def codec_for_output(path: str | Path, codec: str | None = None) -> OutputFormat:
    """The format for writing ``path``: ``codec`` if given, else the path's extension.

    A codec whose extension differs from the path's is refused rather than written under a
    misleading name.
    """
    by_path = format_for_path(path)
    if codec is None:
        if by_path is None:
            names = ", ".join(f.extension for f in FORMATS.values())
            raise CapError(
                "output", f"Cannot tell the codec from {Path(path).name!r}; use {names}."
            )
        return by_path
    chosen = get_format(codec)
    if Path(path).suffix and by_path is not chosen:
        raise CapError(
            "output",
            f"Codec {chosen.codec} writes {chosen.extension} files, not {Path(path).suffix!r}.",
        )
    return chosen


def render_warnings(props: TextAnimationProps, codec: str) -> list[str]:
    """Sentences for the render object's ``warnings``: a font that is not installed, and what
    this codec loses of these props."""
    from renderlab.render.fonts import fallback_note  # fontpkg and Pillow: only when asked

    fmt = get_format(codec)
    warnings = [note] if (note := fallback_note(props.font_family)) is not None else []
    if props.background_color is None and not fmt.carries_alpha:
        warnings.append(
            "The background is transparent, but H.264 has no alpha channel: this video's"
            " background is black. Set background_color for another colour, or use vp9 (WebM)"
            " or prores (MOV) to keep the transparency."
        )
    if props.background_color is None and fmt.codec == "gif":
        fades = " and its fade shows as one step" if props.style in FADING_STYLES else ""
        warnings.append(
            "GIF transparency is on or off: over this transparent background the text's edges"
            f" are hard{fades}. Set background_color for smooth edges, or use vp9 (WebM)."
        )
    return warnings


FADING_STYLES = ("fade-in", "slide-up")
"""Styles whose opacity goes from 0 to 1 (``compositions.motion``)."""
