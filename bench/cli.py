"""CLI start-up benchmark: whole ``renderlab`` processes against references run alongside them.

Ratios, each against a reference measured in the same run (issue 16's targets):

* ``renderlab --help`` against ``python -c "import typer, rich"``: at most 2x;
* ``renderlab render`` of the 1920x1080, 600-frame fade-in, the whole process, against ffmpeg
  ``drawtext`` + libx264 ``veryfast`` rendering the same fade-in (``bench/render.py``'s
  reference): at most 0.10x;
* the same for a 100-character typewriter: at most 0.25x.

Beside them, the libraries a render imports before any renderlab code runs (``LIBRARIES``),
as a ratio to ffmpeg too: the floor under both render ratios; and the same with renderlab's
modules too (``IMPORTED``): what is left of a ratio above it is the render itself.

Every command runs ``--repeat`` times, the commands taking turns so a change in the machine's
load hits all of them alike; medians are printed. renderlab's modules are byte-compiled first,
as ``pip install`` leaves an installed package (and any Python run writes its ``__pycache__``):
with ``PYTHONDONTWRITEBYTECODE`` set, as on the machine these figures were first taken on, an
editable checkout compiled every module from source in every process, about 25 ms of a render.

With ``--drawing`` it prints instead the drawing of every distinct picture (layout, rasterising,
tiles; no encoding) of the 100-character typewriter and of heavier texts, with the run rasters
cached (``render.runcache``) and drawn afresh (the previous drawing), alternated in one process.

    python bench/cli.py [--repeat 5] [--drawing]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
RENDERLAB = str(Path(sys.executable).with_name("renderlab"))
TARGETS = {"help": 2.0, "fade-in": 0.10, "typewriter": 0.25}
# What a render process imports before renderlab's own code: its floor, printed as a ratio too.
# (``import pydantic`` alone defers most of pydantic; a render builds models. Rich is drawn
# only for a terminal, and these commands write to a pipe.)
LIBRARIES = "import numpy, av, PIL.ImageFont, regex, fontpkg, typer; from pydantic import BaseModel"
# And with renderlab's own modules that a render of the fade-in loads, nothing drawn.
IMPORTED = (
    "import renderlab.cli, renderlab.render.video, renderlab.render.chunks; "
    "from renderlab.limits import get_limits; get_limits()"
)


def _bench_render():  # type: ignore[no-untyped-def]
    """bench/render.py as a module: its props and its ffmpeg reference."""
    spec = importlib.util.spec_from_file_location("bench_render", HERE / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        command,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env} if env else None,
    )
    return time.perf_counter() - started


def _runs(work: Path) -> dict[str, Callable[[], float]]:
    bench = _bench_render()
    ffmpeg = bench._ffmpeg()
    runs: dict[str, Callable[[], float]] = {
        "import typer, rich": lambda: _timed([sys.executable, "-c", "import typer, rich"]),
        "help": lambda: _timed([RENDERLAB, "--help"]),
        "libraries": lambda: _timed(
            [sys.executable, "-c", LIBRARIES], {"OPENBLAS_NUM_THREADS": "1"}
        ),
        "imported": lambda: _timed([sys.executable, "-c", IMPORTED], {"OPENBLAS_NUM_THREADS": "1"}),
        "ffmpeg": lambda: bench._ffmpeg_once(ffmpeg, work / "ffmpeg.mp4", 18, "veryfast")[0],
    }
    for style in ("fade-in", "typewriter"):
        props = work / f"{style}.json"
        props.write_text(json.dumps(bench._props(style)))
        runs[style] = lambda command=runs_command(work, style): _timed(command)
    # The first render of its size and background in a fresh cache directory: the flat slices
    # made afresh (render/diskcache.py), as with RENDERLAB_CACHE_DIR=off.
    runs["fade-in, no cache"] = lambda command=runs_command(work, "fade-in"): _timed(
        command, {"RENDERLAB_CACHE_DIR": "off"}
    )
    return runs


def runs_command(work: Path, style: str) -> list[str]:
    return [RENDERLAB, "render", str(work / f"{style}.json"), "-o", str(work / f"{style}.mp4")]


FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
DRAWING_CASES = {
    "typewriter 100 chars, 72 px": ("bench", 72),
    "typewriter 500 chars, 48 px": ("word " * 100, 48),
    "typewriter 20 ZWJ families, 200 px": (FAMILY * 20, 200),
}


def _draw_all(text: str, size: int, cached: bool) -> float:
    from renderlab.compositions.props import TextAnimationProps
    from renderlab.render.frames import FramePainter

    props = TextAnimationProps(
        text=text, style="typewriter", font_size=size, color="#FFFFFF", duration_in_frames=600
    )
    painter = FramePainter(props, 1920, 1080, cache_runs=cached)
    started = time.perf_counter()
    previous = None
    for frame in range(props.duration_in_frames):
        key = painter.picture_key(painter.state(frame))
        if key != previous:
            painter.tile(key)
            previous = key
    return time.perf_counter() - started


def drawing(repeat: int) -> None:
    bench = _bench_render()
    _draw_all("warm up the fonts", 72, True)
    for name, (text, size) in DRAWING_CASES.items():
        text = bench.TYPEWRITER_TEXT if text == "bench" else text
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(repeat):
            for cached in (False, True):
                times[cached].append(_draw_all(text, size, cached))
        before, after = (statistics.median(times[c]) for c in (False, True))
        print(f"{name:<36} afresh {before:6.2f} s  cached {after:6.2f} s  {before / after:5.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--drawing", action="store_true", help="cached vs afresh drawing")
    args = parser.parse_args()
    if args.drawing:
        drawing(args.repeat)
        return
    import compileall

    import renderlab

    compileall.compile_dir(Path(renderlab.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(prefix="renderlab-bench-cli-") as tmp:
        runs = _runs(Path(tmp))
        for run in runs.values():
            run()  # warm the page cache and the font lookups' files
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, run in runs.items():
                times[name].append(run())
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, value in median.items():
        print(f"{name:<20} {value:7.3f} s  (median of {args.repeat})")
    ratios = {
        "help": median["help"] / median["import typer, rich"],
        "fade-in": median["fade-in"] / median["ffmpeg"],
        "typewriter": median["typewriter"] / median["ffmpeg"],
    }
    against = {"help": "import typer, rich", "fade-in": "ffmpeg", "typewriter": "ffmpeg"}
    for name, ratio in ratios.items():
        ok = "yes" if ratio <= TARGETS[name] else "NO"
        print(f"{name:<11} / {against[name]:<18} {ratio:6.3f}  target <= {TARGETS[name]:.2f}  {ok}")
    uncached = median["fade-in, no cache"] / median["ffmpeg"]
    print(f"fade-in, no cache / ffmpeg        {uncached:6.3f}  (the flat slices made afresh)")
    floor = median["libraries"] / median["ffmpeg"]
    print(f"libraries   / ffmpeg              {floor:6.3f}  (importing them, nothing rendered)")
    floor = median["imported"] / median["ffmpeg"]
    print(
        f"imported    / ffmpeg              {floor:6.3f}  (and renderlab's modules, nothing drawn)"
    )


if __name__ == "__main__":
    main()
