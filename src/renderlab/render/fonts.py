"""Font resolution: a family name to a font file, and the fallback fonts behind it.

Families come from pip packages first (``fontpkg-*``: Inter, Roboto, Noto Sans ...), then from
the system's font directories (Debian's ``fonts-noto-*`` for emoji, CJK, Hebrew ...). Nothing is
downloaded. A family that is not installed falls back to Inter with a log line, never an error.

Behind the chosen font stands a fixed chain of fallback fonts, tried per grapheme cluster for
characters the chosen font lacks, the way a browser falls back per glyph. Fonts that are absent
are simply not in the chain; a character no font has is drawn with the primary font (a box).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import fontpkg
from PIL import ImageFont, features

from renderlab.render.fontfile import FontFile, FontFileError, VerticalMetrics

log = logging.getLogger(__name__)

# Pillow shapes with raqm (HarfBuzz + FriBiDi) when its wheel found them; without raqm it can
# only draw left to right, unshaped, and refuses a direction argument.
RAQM = bool(features.check_feature("raqm"))

DEFAULT_FAMILY = "Inter"
NORMAL_WEIGHT = 400

# pip families behind every primary font, in order (absent ones are skipped).
PIP_FALLBACKS = (
    "Inter",
    "Noto Sans",
    "Noto Sans Arabic",
    "Noto Sans Hebrew",
    "Heebo",
    "Noto Sans Devanagari",
    "Noto Sans Thai",
)
# System font files behind those, by file name, in order: script coverage first, then CJK,
# then colour emoji, then the broad last resorts.
SYSTEM_FALLBACK_FILES = (
    "NotoSans-Regular.ttf",
    "NotoSansHebrew-Regular.ttf",
    "NotoSansArabic-Regular.ttf",
    "NotoSansArmenian-Regular.ttf",
    "NotoSansGeorgian-Regular.ttf",
    "NotoSansBengali-Regular.ttf",
    "NotoSansTamil-Regular.ttf",
    "NotoSansEthiopic-Regular.ttf",
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKjp-Regular.otf",
    "DroidSansFallbackFull.ttf",
    "wqy-microhei.ttc",
    "NotoColorEmoji.ttf",
    "NotoSansSymbols-Regular.ttf",
    "NotoSansSymbols2-Regular.ttf",
    "NotoSansMath-Regular.ttf",
    "DejaVuSans.ttf",
)
EMOJI_FILES = ("NotoColorEmoji.ttf",)
GENERIC_FAMILIES = {
    "sans-serif": ("Inter",),
    "system-ui": ("Inter",),
    "ui-sans-serif": ("Inter",),
    "serif": ("Noto Serif", "DejaVu Serif", "Playfair Display"),
    "ui-serif": ("Noto Serif", "DejaVu Serif"),
    "monospace": ("Noto Sans Mono", "DejaVu Sans Mono"),
    "ui-monospace": ("Noto Sans Mono", "DejaVu Sans Mono"),
    "cursive": ("Dancing Script",),
    "emoji": ("Noto Color Emoji",),
}
_STYLE_WORDS = re.compile(
    r"(regular|book|normal|roman|thin|hairline|extralight|ultralight|light|medium|semibold"
    r"|demibold|bold|extrabold|ultrabold|black|heavy|italic|oblique|condensed|semicondensed"
    r"|expanded|variablefont|vf|wght|opsz|wdth)+$"
)


def _system_font_dirs() -> list[Path]:
    dirs = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts"]
    extra = os.environ.get("RENDERLAB_FONT_DIRS")
    if extra:
        dirs = [Path(p) for p in extra.split(os.pathsep) if p] + dirs
    return dirs


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


@dataclass(frozen=True)
class FontFace:
    """One loadable face: a file, its face index, its variation and its strike if bitmap-only."""

    path: str
    index: int = 0
    name: str = ""
    weight: int = NORMAL_WEIGHT
    variable: bool = False
    bitmap_size: int | None = None

    @property
    def is_bitmap(self) -> bool:
        return self.bitmap_size is not None


@lru_cache(maxsize=1)
def _system_files() -> dict[str, Path]:
    """Every font file under the system font directories, by file name (first one wins)."""
    found: dict[str, Path] = {}
    for root in _system_font_dirs():
        if not root.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(root):
            for name in sorted(files):
                if name.lower().endswith((".ttf", ".otf", ".ttc")):
                    found.setdefault(name, Path(dirpath) / name)
    return found


@lru_cache(maxsize=1)
def _system_families() -> dict[str, list[Path]]:
    """System files grouped by a family key guessed from the file name (no file is opened)."""
    families: dict[str, list[Path]] = {}
    for name, path in _system_files().items():
        stem = _key(Path(name).stem)
        family = _STYLE_WORDS.sub("", stem) or stem
        families.setdefault(family, []).append(path)
    for paths in families.values():
        paths.sort(key=lambda p: (_style_penalty(p.stem), p.name))
    return families


def _style_penalty(stem: str) -> int:
    lowered = stem.lower()
    words = ("bold", "italic", "oblique", "light", "thin", "black", "medium", "condensed", "semi")
    return sum(word in lowered for word in words) - ("regular" in lowered)


def _pip_family(name: str) -> fontpkg.Family:
    """fontpkg's family for ``name``, read from its own package where that follows fontpkg's
    naming (``fontpkg-open-sans`` installs ``fontpkg_open_sans``): fontpkg's registry parses
    the entry points of every installed distribution first, 20-40 ms of each process. The
    package is located, not imported; any other family goes through the registry."""
    slug = fontpkg.slugify(name)
    module = "fontpkg_" + slug.replace("-", "_")
    spec = importlib.util.find_spec(module) if module.isidentifier() else None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        metadata = Path(location) / "metadata.json"
        if metadata.is_file():
            fam = fontpkg.family_from_metadata(json.loads(metadata.read_bytes()), Path(location))
            if fam.slug == slug:
                return fam
    return fontpkg.family(name)


def _pip_face(name: str) -> FontFace | None:
    try:
        fam = _pip_family(name)
        chosen = fontpkg.select_file(fam, NORMAL_WEIGHT, "normal", nearest=True)
    except fontpkg.FontpkgError:
        return None
    return FontFace(str(chosen.path), 0, fam.name, NORMAL_WEIGHT, chosen.variable)


def _file_face(path: Path, name: str) -> FontFace | None:
    try:
        font = FontFile(path)
        size = font.strike_size() if font.is_bitmap_only else None
        if font.is_bitmap_only and size is None:
            return None
        font.metrics()
    except FontFileError:
        return None
    return FontFace(str(path), 0, name, NORMAL_WEIGHT, font.has_table("fvar"), size)


def _system_face(name: str) -> FontFace | None:
    paths = _system_families().get(_key(name))
    if not paths:
        return None
    return _file_face(paths[0], name)


@lru_cache(maxsize=256)
def find_family(name: str) -> FontFace | None:
    """An installed face for one family name (pip packages first), or None."""
    name = name.strip().strip("'\"").strip()
    if not name:
        return None
    for lookup in (_pip_face, _system_face):  # the system's fonts are walked only if needed
        face = lookup(name)
        if face is not None and usable(face):
            return face
    return None


def resolve_family(font_family: str) -> FontFace:
    """The face for a CSS-like ``font_family`` ("Open Sans", "'Roboto', sans-serif" ...).

    Tries each listed family, generic names included, and falls back to Inter: the render's
    ``warnings`` say so (:func:`fallback_note`), the log only at debug level."""
    return _resolved(font_family)[0]


def fallback_note(font_family: str) -> str | None:
    """The sentence for a render's ``warnings`` when none of ``font_family`` is installed (the
    API lists those that are at ``GET /v1/fonts``; the sentence is the CLI's too)."""
    if _resolved(font_family)[1]:
        return None
    return (
        f"font_family {font_family!r} is not installed here: the text is drawn in {DEFAULT_FAMILY}."
    )


@lru_cache(maxsize=256)
def _resolved(font_family: str) -> tuple[FontFace, bool]:
    """The face, and whether it is one of the families asked for (not the fallback)."""
    for part in font_family.split(","):
        name = part.strip().strip("'\"").strip()
        for candidate in GENERIC_FAMILIES.get(name.lower(), (name,)):
            face = find_family(candidate)
            if face is not None:
                return face, True
    log.debug("font family %r is not installed; using %s", font_family, DEFAULT_FAMILY)
    face = find_family(DEFAULT_FAMILY)
    if face is None:  # fontpkg-inter is a dependency; only a broken install gets here
        face = next((f for f in fallback_chain() if usable(f)), None)
    if face is None:
        raise RuntimeError("no usable font is installed (expected the fontpkg-inter package)")
    return face, False


@lru_cache(maxsize=1)
def fallback_chain() -> tuple[FontFace, ...]:
    """The fallback faces, in the order a missing character looks through them."""
    faces: list[FontFace] = []
    seen: set[str] = set()

    def add(face: FontFace | None) -> None:
        if face is not None and face.path not in seen:
            seen.add(face.path)
            faces.append(face)

    for name in PIP_FALLBACKS:
        add(_pip_face(name))
    files = _system_files()
    for filename in SYSTEM_FALLBACK_FILES:
        if filename in files:
            add(_file_face(files[filename], Path(filename).stem))
    return tuple(faces)


@lru_cache(maxsize=1)
def emoji_faces() -> tuple[FontFace, ...]:
    """The colour emoji faces of the chain, tried first for emoji-presentation clusters."""
    return tuple(f for f in fallback_chain() if Path(f.path).name in EMOJI_FILES)


@lru_cache(maxsize=64)
def font_file(face: FontFace) -> FontFile:
    return FontFile(face.path, face.index)


def covers(face: FontFace, codepoint: int) -> bool:
    """Whether ``face`` has a glyph for ``codepoint`` (False for a face that will not load)."""
    if not usable(face):
        return False
    try:
        return font_file(face).has_char(codepoint)
    except FontFileError:
        return False


@lru_cache(maxsize=128)
def usable(face: FontFace) -> bool:
    """Whether Pillow (FreeType) and the table reader both load the face: a broken font file
    is skipped like a missing one, never fails a render."""
    try:
        font_file(face).metrics()
        pil_font(face, 16.0, 16.0)
    except (OSError, ValueError) as exc:
        log.warning("font %s cannot be used: %s", face.path, exc)
        return False
    return True


def vertical_metrics(face: FontFace) -> VerticalMetrics:
    return font_file(face).metrics()


# Each entry is a FreeType face with its own glyph cache (~1 MB for Inter): a scale animation
# asks for ~60 sizes, and keeping them all would cost 60 MB for nothing.
@lru_cache(maxsize=24)
def pil_font(face: FontFace, size: float, optical_size: float) -> ImageFont.FreeTypeFont:
    """A Pillow font with raqm shaping; for a bitmap face ``size`` is ignored (its strike).

    Variable faces get weight 400 and, where the font has the axis, the optical size a
    browser applies by default (``font-optical-sizing: auto`` sets opsz to the CSS px size).
    """
    load_size = face.bitmap_size if face.bitmap_size is not None else size
    engine = ImageFont.Layout.RAQM if RAQM else ImageFont.Layout.BASIC
    font = ImageFont.truetype(face.path, load_size, index=face.index, layout_engine=engine)
    if face.variable:
        try:
            axes = font.get_variation_axes()
            values = []
            for axis in axes:
                name = axis.get("name", b"")
                tag = name.decode("latin-1") if isinstance(name, bytes) else str(name)
                tag = tag.strip().lower()
                low, high = _axis_value(axis, "minimum"), _axis_value(axis, "maximum")
                if tag in ("weight", "wght"):
                    value = float(face.weight)
                elif tag in ("optical size", "opsz", "optical_size"):
                    value = optical_size
                else:
                    value = _axis_value(axis, "default")
                values.append(min(max(value, low), high))
            font.set_variation_by_axes(values)
        except (OSError, KeyError, ValueError):
            log.debug("could not set variation axes of %s", face.path)
    return font


def _axis_value(axis: Mapping[str, object], name: str) -> float:
    """A number of a variation axis (Pillow types them optional); ValueError if absent."""
    value = axis[name]
    if not isinstance(value, (int, float)):
        raise ValueError(f"variation axis without a {name}")
    return float(value)


def text_direction(rtl: bool) -> str | None:
    """The ``direction`` argument for Pillow's text calls: None (its default) without raqm."""
    return ("rtl" if rtl else "ltr") if RAQM else None


def direction(rtl: bool) -> dict[str, str]:
    """The ``direction`` keyword for Pillow's text calls (none without raqm)."""
    if not RAQM:
        return {}
    return {"direction": "rtl" if rtl else "ltr"}
