"""``renderlab render`` and ``renderlab still``: the native renderer from the command line.

Bad props or settings print one line naming the field and exit with status 2, before anything
is drawn. ``render`` shows a Rich progress bar on a terminal (frames done of total); its codec
follows ``--codec`` or the output's extension, and a mismatch of the two is refused. Sizes
default to the composition's (its ``width``/``height`` props).

The renderer, pydantic and Rich's console are imported by the commands' bodies, not here, so
``renderlab --help`` does not load them. Rich only draws for a terminal: written to a pipe or a
file (a script, CI, the app's backend), the same lines are plain text, unwrapped, with no bar
(a long render says how far it is every 2 s, the service's progress cadence), and Rich is not
imported at all (about 20 ms of a 0.3 s render process).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import typer

from renderlab.cli.app import app, stderr

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from renderlab.caps import CapError
    from renderlab.compositions.props import TextAnimationProps
    from renderlab.limits import Limits
    from renderlab.render import OutputFormat

# renderlab.render.encode.DEFAULT_CRF, written here so that the option's help needs no import
# of the encoder (PyAV); tests/test_cli_startup.py checks that the two agree.
DEFAULT_CRF = 18


@lru_cache(maxsize=1)
def _console() -> Console | None:
    """Rich's console on stderr if it is a terminal (or ``FORCE_COLOR`` asks for one, as Rich
    itself honours it); None: plain lines."""
    if not (sys.stderr.isatty() or os.environ.get("FORCE_COLOR")):
        return None
    return stderr()


def _say(message: str, label: str = "", style: str = "") -> None:
    """One line on stderr: ``label`` (``error``, ``warning``) in ``style`` on a terminal."""
    console = _console()
    if console is None:
        sys.stderr.write(f"{label}: {message}\n" if label else f"{message}\n")
        return
    from rich.markup import escape

    text = f"[{style}]{label}:[/{style}] {escape(message)}" if label else escape(message)
    console.print(text, highlight=False, soft_wrap=True)


def _fail(message: str) -> typer.Exit:
    _say(message, "error", "red")
    return typer.Exit(2)


def _load_props(path: Path) -> TextAnimationProps:
    from pydantic import ValidationError

    from renderlab.compositions.props import TextAnimationProps

    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _fail(f"{path} is not valid JSON: {exc}") from None
    try:
        return TextAnimationProps.model_validate_json(raw)
    except ValidationError as exc:
        from renderlab.compositions.props import error_message, near_miss_first

        for error in near_miss_first(exc.errors()):  # every failing field, as the API's 422
            field = ".".join(str(part) for part in error["loc"]) or "props"
            message = error_message(error)
            # "color: color must be..." says the field twice; a message naming it says it once
            said = message.startswith(f"{error['loc'][-1]} ") if error["loc"] else False
            _say(message if said else f"{field}: {message}", "error", "red")
        raise typer.Exit(2) from None


class _Size(NamedTuple):
    width: int
    height: int
    derived: str | None
    """The side computed from the other (``width``/``height``), or None."""


def _size(
    props: TextAnimationProps, width: int | None, height: int | None, limits: Limits
) -> _Size:
    """The output size, as the server makes it: as given, or the composition's, or the other
    side at its aspect (``caps.requested_size``)."""
    from renderlab.caps import requested_size

    size = requested_size(limits, props.width, props.height, width, height)
    derived = "width" if width is None and height is not None else None
    derived = "height" if height is None and width is not None else derived
    return _Size(size.width, size.height, derived)


# The renderer's fields that are this command's options by another spelling.
_OPTIONS = {
    "chunk_size": "--chunk-size",
    "workers": "--workers",
    "crf": "--crf",
    "frame": "--frame",
}


def _setting_error(exc: CapError, size: _Size | None = None) -> typer.Exit:
    """Exit 2 naming the field; a side the user did not give is blamed on the one they did
    (``--height 5000`` makes the width 8888, too large: the option to change is --height)."""
    option = _OPTIONS.get(exc.field)
    if option is not None:  # "--chunk-size must be at least 1.", the option said once
        said = exc.message.replace(exc.field, option)
        return _fail(said if said.startswith(option) else f"{option}: {said}")
    if size is None or exc.field != size.derived:
        return _fail(f"{exc.field}: {exc.message}")
    given = "height" if size.derived == "width" else "width"
    value = size.height if given == "height" else size.width
    return _fail(
        f"{given}: {exc.message} (--{given} {value} makes the output {size.width}x{size.height},"
        " at the composition's aspect ratio)"
    )


@app.command("render", short_help="Render PROPS.json to a video file.")
def render(
    props_file: Path = typer.Argument(..., metavar="PROPS.json", help="TextAnimation props."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="The file to write (.mp4, .webm, .mov or .gif)."
    ),
    codec: str | None = typer.Option(
        None, help="h264, vp9, prores or gif (default: from the output's extension)."
    ),
    width: int | None = typer.Option(None, help="Output width (default: the composition's)."),
    height: int | None = typer.Option(None, help="Output height (default: the composition's)."),
    crf: int = typer.Option(DEFAULT_CRF, help="x264 constant rate factor, 1-51 (lower: better)."),
    chunk_size: int | None = typer.Option(None, help="Frames per chunk (default: one per worker)."),
    workers: int = typer.Option(1, help="Processes rendering chunks in parallel."),
) -> None:
    """Render PROPS.json to a video (H.264, VP9 with alpha, ProRes 4444, GIF) with a progress
    bar."""
    from renderlab.caps import CapError
    from renderlab.limits import get_limits
    from renderlab.render import plan_chunks, render_video

    _refuse_directory(output, "video.mp4")
    limits = get_limits()  # the deployment's caps, as the server applies them
    props = _load_props(props_file)
    size = _size(props, width, height, limits)
    width, height = size.width, size.height
    try:  # the options' own checks first: nothing is said of a render that will not start
        plan_chunks(props.duration_in_frames, chunk_size, workers, limits.min_chunk_frames)
    except CapError as exc:
        raise _setting_error(exc) from None
    fmt = _checked_format(props, output, codec, size, crf, limits)
    output.parent.mkdir(parents=True, exist_ok=True)
    bar = _progress_bar()
    with bar or nullcontext():
        if bar is None:
            on_progress = _lines(limits.poll_interval_ms / 1000)
        else:
            on_progress = _updates(bar, props.duration_in_frames)
        try:
            result = render_video(
                props,
                output,
                width=width,
                height=height,
                crf=crf,
                codec=fmt.codec,
                chunk_size=chunk_size,
                workers=workers,
                on_progress=on_progress,
                limits=limits,
            )
        except CapError as exc:
            raise _setting_error(exc) from None
    _say(f"wrote {output} ({result.frames} frames, {result.bytes} bytes) in {result.seconds:.2f} s")


def _refuse_directory(output: Path, example: str) -> None:
    if output.is_dir():
        raise _fail(f"output: {output} is a directory: name a file in it, e.g. {output / example}")


def _checked_format(
    props: TextAnimationProps,
    output: Path,
    codec: str | None,
    size: _Size,
    crf: int,
    limits: Limits,
) -> OutputFormat:
    """The output's format, once the render passed every check (exit 2 naming the field);
    what the codec loses of the props is printed as warnings."""
    from renderlab.caps import CapError
    from renderlab.render import check_render, codec_for_output, render_warnings, validate_crf

    try:
        fmt = codec_for_output(output, codec)
        check_render(props, size.width, size.height, limits)
        validate_crf(crf)
    except CapError as exc:
        raise _setting_error(exc, size) from None
    for warning in render_warnings(props, fmt.codec):
        _say(warning, "warning", "yellow")
    return fmt


def _updates(bar: Progress, frames: int) -> Callable[[int, int], None]:
    """The render's progress callback for ``bar``. The bar redraws 10 times a second; an update
    costs a quarter of a millisecond, as much as encoding a repeated frame: the last one of
    each 50 ms is enough."""
    task = bar.add_task("render", total=frames)
    shown = [0.0]

    def on_progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - shown[0] >= 0.05 or done == total:
            shown[0] = now
            bar.update(task, completed=done, total=total)

    return on_progress


def _lines(every_s: float) -> Callable[[int, int], None]:
    """The progress callback off a terminal: a plain line on stderr at most every ``every_s``
    (the service's progress cadence), the first after that long, so a short render says only
    that it wrote its file and a long one says how far it is."""
    shown = [time.monotonic()]

    def on_progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - shown[0] >= every_s and done < total:
            shown[0] = now
            _say(f"rendering: {done}/{total} frames ({100 * done // total} %)")

    return on_progress


def _progress_bar() -> Progress | None:
    """Frames done of total, on a terminal only (a bar in a log is a line of noise)."""
    console = _console()
    if console is None:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("[bold]rendering"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console, transient=False)


@app.command("still", short_help="Render one frame of PROPS.json to a PNG.")
def still(
    props_file: Path = typer.Argument(..., metavar="PROPS.json", help="TextAnimation props."),
    frame: int = typer.Option(0, "--frame", help="Frame number, from 0 (the first)."),
    output: Path = typer.Option(..., "--output", "-o", help="The PNG to write."),
    width: int | None = typer.Option(None, help="Output width (default: the composition's)."),
    height: int | None = typer.Option(None, help="Output height (default: the composition's)."),
) -> None:
    """Render frame N of PROPS.json to a PNG (transparent where the background is)."""
    from renderlab.caps import CapError
    from renderlab.limits import get_limits
    from renderlab.render import check_render, render_still, validate_frame

    _refuse_directory(output, "frame.png")
    if output.suffix.lower() != ".png":
        raise _fail(f"output: a still is a PNG: name the file .png, not {output.name!r}")
    limits = get_limits()
    props = _load_props(props_file)
    size = _size(props, width, height, limits)
    try:
        check_render(props, size.width, size.height, limits)
        validate_frame(props, frame)
        data = render_still(props, frame, size.width, size.height, limits=limits)
    except CapError as exc:
        raise _setting_error(exc, size) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    _say(f"wrote {output} ({len(data)} bytes)")
