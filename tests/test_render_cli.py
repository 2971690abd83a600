"""``renderlab render`` and ``renderlab still`` as a user runs them."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import renderlab.cli.render  # noqa: F401  (registers the commands on the shared app)
from renderlab.cli.app import app
from renderlab.limits import get_limits
from tests.render_helpers import ffprobe

runner = CliRunner()


@pytest.fixture
def props_file(tmp_path: Path) -> Path:
    path = tmp_path / "props.json"
    path.write_text(
        json.dumps(
            {
                "text": "From the CLI",
                "style": "slide-up",
                "color": "#FFFFFF",
                "duration_in_frames": 45,
            }
        )
    )
    return path


@pytest.fixture
def fresh_limits() -> Iterator[None]:
    get_limits.cache_clear()
    yield
    get_limits.cache_clear()


def test_render_writes_the_mp4(props_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    result = runner.invoke(
        app,
        [
            "render",
            str(props_file),
            "-o",
            str(out),
            "--width",
            "640",
            "--height",
            "360",
            "--crf",
            "23",
            "--chunk-size",
            "20",
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "(45 frames" in result.output  # plain lines: the runner's stderr is no terminal
    assert "━" not in result.output
    info = ffprobe(out)
    assert int(info["nb_read_frames"]) == 45
    assert (info["width"], info["height"]) == (640, 360)


def test_still_writes_the_png(props_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "frame.png"
    result = runner.invoke(
        app,
        [
            "still",
            str(props_file),
            "--frame",
            "40",
            "-o",
            str(out),
            "--width",
            "320",
            "--height",
            "180",
        ],
    )
    assert result.exit_code == 0, result.output
    image = Image.open(io.BytesIO(out.read_bytes()))
    assert image.size == (320, 180) and image.mode == "RGBA"


def test_still_draws_the_first_frame_when_no_frame_is_given(
    props_file: Path, tmp_path: Path
) -> None:
    """As the API's still does (``frame`` defaults to 0)."""
    shots = {}
    for name, frame in (("default", []), ("first", ["--frame", "0"]), ("later", ["--frame", "40"])):
        out = tmp_path / f"{name}.png"
        size = ["--width", "320", "--height", "180"]
        result = runner.invoke(app, ["still", str(props_file), *frame, "-o", str(out), *size])
        assert result.exit_code == 0, result.output
        shots[name] = out.read_bytes()
    assert shots["default"] == shots["first"] != shots["later"]


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"text": "x", "style": "bounce", "color": "#FFFFFF"}, "style"),
        ({"text": "x", "style": "scale", "color": "white"}, "color"),
        ({"text": "", "style": "scale", "color": "#FFFFFF"}, "text"),
        ({"text": "x", "style": "scale", "color": "#FFFFFF", "font_size": 201}, "font_size"),
        ({"text": "x", "style": "scale", "color": "#FFFFFF", "extra": 1}, "extra"),
        (
            {"text": "x", "style": "scale", "color": "#FFFFFF", "duration_in_frames": 601},
            "duration_in_frames",
        ),
    ],
)
def test_bad_props_exit_2_naming_the_field(tmp_path: Path, props: dict, field: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(props))
    out = tmp_path / "never.mp4"
    result = runner.invoke(app, ["render", str(path), "-o", str(out)])
    assert result.exit_code == 2
    assert field in result.output
    assert "Value error" not in result.output  # pydantic's prefix, dropped as the API does
    assert not out.exists()


def test_every_bad_field_is_named_at_once(tmp_path: Path) -> None:
    """As the API's 422 lists them, so one run shows everything to fix (a fresh-eyes run fixed
    them one per run)."""
    path = tmp_path / "bad.json"
    bad = {"text": "x", "style": "fade", "color": "white", "duration_in_frames": 900}
    path.write_text(json.dumps(bad))
    result = runner.invoke(app, ["render", str(path), "-o", str(tmp_path / "never.mp4")])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "style",
        "color must be a colour as #RRGGBB (six hex digits, like #FFFFFF), not 'white'",
        "duration_in_frames",
    ]
    assert all(line.startswith("error: ") for line in lines)


def test_size_above_caps_and_bad_frame_exit_2(props_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "render",
            str(props_file),
            "-o",
            str(tmp_path / "x.mp4"),
            "--width",
            "3840",
            "--height",
            "2160",
        ],
    )
    assert result.exit_code == 2
    assert "Resolution too large. Maximum is 1920x1080." in result.output
    result = runner.invoke(
        app, ["still", str(props_file), "--frame", "45", "-o", str(tmp_path / "x.png")]
    )
    assert result.exit_code == 2
    assert "error: --frame must be from 0 to " in result.output  # the option, said once
    result = runner.invoke(
        app, ["render", str(props_file), "-o", str(tmp_path / "x.mp4"), "--crf", "60"]
    )
    assert result.exit_code == 2 and "crf" in result.output
    assert not list(tmp_path.glob("x.*"))


def test_a_colour_error_says_the_format_not_the_regex(tmp_path: Path) -> None:
    path = tmp_path / "red.json"
    path.write_text(json.dumps({"text": "x", "style": "scale", "color": "red"}))
    result = runner.invoke(app, ["render", str(path), "-o", str(tmp_path / "x.mp4")])
    assert result.exit_code == 2
    assert "color must be a colour as #RRGGBB (six hex digits, like #FFFFFF), not 'red'" in (
        result.output
    )
    assert "[0-9A-Fa-f]" not in result.output and "color: color" not in result.output


@pytest.mark.parametrize(
    ("props", "said"),
    [
        (
            {"style": "bounce"},
            "style: Input should be 'fade-in', 'typewriter', 'slide-up' or 'scale', not 'bounce'",
        ),
        ({"colour": "#FFFFFF"}, "colour: Extra inputs are not permitted (did you mean 'color'?)"),
        (
            {"colour": "#FFFFFF", "color": None},
            "error: colour: Extra inputs are not permitted (did",
        ),
        (
            {"background_color": "transparent"},
            "not 'transparent'; leave it out for a transparent background",
        ),
    ],
)
def test_a_props_error_says_what_was_given_and_what_was_meant(
    tmp_path: Path, props: dict, said: str
) -> None:
    path = tmp_path / "props.json"
    given = {"text": "x", "style": "scale", "color": "#FFFFFF", **props}
    path.write_text(json.dumps({k: v for k, v in given.items() if v is not None}))  # None: left out
    result = runner.invoke(app, ["render", str(path), "-o", str(tmp_path / "x.mp4")])
    assert result.exit_code == 2
    assert said in result.output


def test_options_and_outputs_are_named_as_typed(props_file: Path, tmp_path: Path) -> None:
    """The renderer's chunk_size is the option --chunk-size; a directory is not an output."""
    out = tmp_path / "x.mp4"
    result = runner.invoke(app, ["render", str(props_file), "-o", str(out), "--chunk-size", "0"])
    assert result.exit_code == 2
    assert result.output == "error: --chunk-size must be at least 1.\n"  # alone, said once
    for command, extra, example in (
        ("render", [], "video.mp4"),
        ("still", ["--frame", "0"], "frame.png"),
    ):
        result = runner.invoke(app, [command, str(props_file), "-o", str(tmp_path), *extra])
        assert result.exit_code == 2
        assert (
            f"output: {tmp_path} is a directory: name a file in it, e.g. {tmp_path / example}"
            in (result.output)
        )
    assert not out.exists()


@pytest.mark.parametrize("command", ["render", "still"])
def test_a_side_given_alone_is_the_one_blamed(
    props_file: Path, tmp_path: Path, command: str
) -> None:
    """``--height 2000`` of a 16:9 composition makes the width 3556: the error names the
    option the user gave, and the size it made."""
    out = tmp_path / ("x.mp4" if command == "render" else "x.png")
    frame = ["--frame", "0"] if command == "still" else []
    result = runner.invoke(
        app, [command, str(props_file), "-o", str(out), *frame, "--height", "2000"]
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: height: Resolution too large.")
    assert "--height 2000 makes the output 3556x2000" in result.output
    assert not out.exists()


def test_a_still_named_other_than_png_exits_2_before_drawing(
    props_file: Path, tmp_path: Path
) -> None:
    for name in ("x.jpg", "x"):
        out = tmp_path / name
        result = runner.invoke(app, ["still", str(props_file), "--frame", "0", "-o", str(out)])
        assert result.exit_code == 2
        assert f"a still is a PNG: name the file .png, not '{name}'" in result.output
        assert not out.exists()
    result = runner.invoke(
        app, ["still", str(props_file), "--frame", "0", "-o", str(tmp_path / "x.PNG")]
    )
    assert result.exit_code == 0
    assert (tmp_path / "x.PNG").read_bytes().startswith(b"\x89PNG")


def test_duration_cap_comes_from_the_environment(
    props_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_limits: None
) -> None:
    monkeypatch.setenv("RENDERLAB_MAX_DURATION_SECONDS", "1")
    result = runner.invoke(app, ["render", str(props_file), "-o", str(tmp_path / "x.mp4")])
    assert result.exit_code == 2
    assert "Animation too long. Maximum duration is 1 seconds." in result.output


def test_unreadable_props_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["still", str(tmp_path / "missing.json"), "--frame", "0", "-o", str(tmp_path / "x.png")],
    )
    assert result.exit_code == 2
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = runner.invoke(app, ["still", str(broken), "--frame", "0", "-o", "x.png"])
    assert result.exit_code == 2 and "JSON" in result.output


@pytest.mark.parametrize(
    ("name", "codec", "probe"),
    [
        ("clip.webm", None, ("vp9", "yuv420p")),  # ffprobe's vp9 decoder ignores alpha
        ("clip.mov", None, ("prores", "yuva444p12le")),
        ("clip.bin.gif", None, ("gif", "bgra")),
        ("clip.webm", "vp9", ("vp9", "yuv420p")),
        ("clip.mov", "prores", ("prores", "yuva444p12le")),
        ("clip.gif", "gif", ("gif", "bgra")),
    ],
)
def test_render_picks_the_codec_from_the_flag_or_the_extension(
    props_file: Path, tmp_path: Path, name: str, codec: str | None, probe: tuple[str, str]
) -> None:
    out = tmp_path / name
    args = ["render", str(props_file), "-o", str(out), "--width", "320", "--height", "180"]
    result = runner.invoke(app, args + (["--codec", codec] if codec else []))
    assert result.exit_code == 0, result.output
    info = ffprobe(out)
    assert info["codec_name"] == probe[0]
    if probe[0] != "gif":
        assert info["pix_fmt"] == probe[1]
    if probe[0] == "vp9":
        assert info["tags"]["alpha_mode"] == "1"  # WebM's flag: the stream carries alpha
    assert int(info["nb_read_frames"]) == 45 or probe[0] == "gif"
    # a GIF over a transparent background says its edges are hard; the others keep the alpha
    assert ("warning" in result.output) == (probe[0] == "gif")


def test_a_codec_that_does_not_match_the_extension_exits_2(
    props_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "clip.webm"
    result = runner.invoke(app, ["render", str(props_file), "-o", str(out), "--codec", "prores"])
    assert result.exit_code == 2
    assert "output: Codec prores writes .mov files, not '.webm'." in " ".join(result.output.split())
    assert not out.exists()
    result = runner.invoke(app, ["render", str(props_file), "-o", str(tmp_path / "clip.avi")])
    assert result.exit_code == 2 and "Cannot tell the codec" in result.output
    result = runner.invoke(
        app, ["render", str(props_file), "-o", str(tmp_path / "c.mp4"), "--codec", "av1"]
    )
    assert result.exit_code == 2 and "codec: Unsupported codec 'av1'" in result.output


def test_h264_of_a_transparent_composition_says_the_background_is_black(
    props_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "clip.mp4"
    result = runner.invoke(app, ["render", str(props_file), "-o", str(out), "--width", "320"])
    assert result.exit_code == 0, result.output
    assert "background is black" in " ".join(result.output.split())
    assert (ffprobe(out)["width"], ffprobe(out)["height"]) == (320, 180)  # height at the aspect


def test_a_portrait_composition_renders_at_its_own_size(tmp_path: Path) -> None:
    path = tmp_path / "portrait.json"
    path.write_text(
        json.dumps(
            {
                "text": "9:16",
                "style": "scale",
                "color": "#FFFFFF",
                "duration_in_frames": 30,
                "width": 1080,
                "height": 1920,
                "background_color": "#000000",
            }
        )
    )
    out = tmp_path / "portrait.mp4"
    result = runner.invoke(app, ["render", str(path), "-o", str(out), "--height", "640"])
    assert result.exit_code == 0, result.output
    assert (ffprobe(out)["width"], ffprobe(out)["height"]) == (360, 640)
    result = runner.invoke(
        app, ["still", str(path), "--frame", "29", "-o", str(tmp_path / "p.png")]
    )
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "p.png").size == (1080, 1920)
    result = runner.invoke(
        app, ["render", str(path), "-o", str(out), "--width", "640", "--height", "360"]
    )
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "is not the shape of this 1080x1920 composition" in said


def test_a_long_render_off_a_terminal_says_how_far_it_is(tmp_path: Path) -> None:
    """Plain lines on stderr at the progress cadence (``RENDERLAB_POLL_INTERVAL_MS``, 2 s by
    default; 100 ms here); a render shorter than one interval says only what it wrote."""
    typed = {"text": "Typed out " * 20, "style": "typewriter", "color": "#FFFFFF"}
    path = tmp_path / "long.json"
    path.write_text(json.dumps({**typed, "duration_in_frames": 600}))
    env = {
        **os.environ,
        "RENDERLAB_POLL_INTERVAL_MS": "100",
        "RENDERLAB_PROGRESS_MIN_INTERVAL_MS": "0",
    }
    out = tmp_path / "long.mp4"
    done = subprocess.run(
        [sys.executable, "-m", "renderlab", "render", str(path), "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stderr.splitlines()
    progress = [line for line in lines if line.startswith("rendering: ")]
    assert progress, done.stderr
    assert all(re.fullmatch(r"rendering: \d+/600 frames \(\d+ %\)", line) for line in progress)
    assert lines[-1].startswith(f"wrote {out} (600 frames")
    quick = subprocess.run(
        [sys.executable, "-m", "renderlab", "render", str(path), "-o", str(out), "--width", "320"],
        env={**os.environ, "RENDERLAB_POLL_INTERVAL_MS": "60000"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert [line for line in quick.stderr.splitlines() if "rendering" in line] == []


@pytest.mark.parametrize(
    ("command", "environment", "said"),
    [
        (
            ["render", "PROPS", "-o", "x.mp4"],
            {"RENDERLAB_RENDERS_PER_HOUR": "abc"},
            ["error: RENDERLAB_RENDERS_PER_HOUR='abc': Input should be a valid integer,"],
        ),
        (
            ["render", "PROPS", "-o", "x.mp4"],
            {"RENDERLAB_POLL_INTERVAL_MS": "100"},  # below the progress interval's 250
            [
                "error: RENDERLAB_PROGRESS_MIN_INTERVAL_MS must not exceed "
                "RENDERLAB_POLL_INTERVAL_MS"
            ],
        ),
        (["token", "alice"], {"RENDERLAB_AUTH": "bogus"}, ["error: RENDERLAB_AUTH='bogus': "]),
    ],
)
def test_a_variable_that_does_not_validate_is_named_not_a_traceback(
    props_file: Path, tmp_path: Path, command: list[str], environment: dict, said: list[str]
) -> None:
    argv = [str(props_file) if part == "PROPS" else part for part in command]
    done = subprocess.run(
        [sys.executable, "-m", "renderlab", *argv],
        env={**os.environ, "RENDERLAB_DATA_DIR": str(tmp_path / "data"), **environment},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == len(said) and "Traceback" not in done.stderr, done.stderr
    assert all(line.startswith(start) for line, start in zip(lines, said, strict=True))
    assert not (tmp_path / "x.mp4").exists()
