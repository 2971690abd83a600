"""The ``renderlab`` command loads only what the command it runs needs.

Measured, not timed here: ``bench/cli.py`` prints the start-up ratios. These tests check the
cause of a slow start: which modules a process has imported (in a fresh interpreter each).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import renderlab.cli.render as cli_render
from renderlab.cli import app

WEB_STACK = ("sqlalchemy", "celery", "fastapi", "starlette", "alembic", "renderlab.api")
RENDERER = ("av", "numpy", "PIL", "pydantic", "renderlab.render.video")
# What a one-process render has no use for, each a measurable part of its start-up: settings
# from the environment are read without pydantic-settings (which loads asyncio and ssl), and
# the process pool of chunked renders is loaded only with --workers.
NOT_FOR_ONE_PROCESS = ("pydantic_settings", "asyncio", "ssl", "multiprocessing", "concurrent")
# Drawn only for a terminal: a render writing to a pipe prints plain lines without it.
TERMINAL_ONLY = ("rich",)


def _imported_after(code: str) -> set[str]:
    """Top-level names in ``sys.modules`` of a fresh interpreter after running ``code``."""
    probe = (
        f"import sys\n{code}\n"
        "import json\n"
        f"names = {list(WEB_STACK + RENDERER + NOT_FOR_ONE_PROCESS + TERMINAL_ONLY)!r}\n"
        "print(json.dumps([n for n in names if n in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=120
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_loads_neither_the_web_stack_nor_the_renderer() -> None:
    assert _imported_after("import renderlab.cli") == set()


def test_help_lists_every_command_without_loading_them() -> None:
    code = (
        "from renderlab.cli import app\n"
        "try:\n"
        "    app(['--help'], prog_name='renderlab')\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    assert _imported_after(code) == set()
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("render", "still", "serve", "token", "worker", "db"):
        assert command in result.output
    listed = result.output.split("Commands:", 1)[1].splitlines()
    assert not [line for line in listed if line.rstrip().endswith("...")], result.output


def test_render_loads_the_renderer_but_not_the_web_stack(tmp_path: Path) -> None:
    props = tmp_path / "props.json"
    props.write_text(json.dumps({"text": "Hi", "style": "fade-in", "color": "#FFFFFF"}))
    out = tmp_path / "out.mp4"
    code = (
        "from renderlab.cli import app\n"
        "try:\n"
        f"    app(['render', {str(props)!r}, '-o', {str(out)!r}, '--width', '320',"
        " '--height', '180'], prog_name='renderlab')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
    )
    loaded = _imported_after(code)
    assert out.stat().st_size > 0
    assert loaded.isdisjoint(WEB_STACK)
    assert loaded.isdisjoint(NOT_FOR_ONE_PROCESS)
    assert loaded.isdisjoint(TERMINAL_ONLY)
    assert {"av", "numpy", "renderlab.render.video"} <= loaded


def test_render_on_a_terminal_draws_the_progress_bar(tmp_path: Path) -> None:
    """On a terminal (a pseudo-terminal here) the bar is drawn to the last frame, in colour."""
    import os
    import pty
    import select
    import time

    renderlab = str(Path(sys.executable).with_name("renderlab"))
    props = tmp_path / "props.json"
    props.write_text(
        json.dumps(
            {"text": "Tty", "style": "fade-in", "color": "#FFFFFF", "duration_in_frames": 30}
        )
    )
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [renderlab, "render", str(props), "-o", str(tmp_path / "o.mp4"), "--width", "320"],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if not ready:
            if child.poll() is not None:
                break
            continue
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert child.wait(30) == 0, seen
    text = seen.decode(errors="replace")
    assert "30/30" in text and "rendering" in text
    assert "\x1b[" in text  # drawn for a terminal
    assert "(30 frames" in text and "warning:" in text


def test_the_crf_default_shown_by_help_is_the_encoders() -> None:
    from renderlab.render import DEFAULT_CRF

    assert cli_render.DEFAULT_CRF == DEFAULT_CRF


def test_the_console_script_exits_without_teardown_but_keeps_output_and_status(
    tmp_path: Path,
) -> None:
    """``render`` ends with ``os._exit``: what it printed, its file and its exit status stay."""
    import av

    renderlab = str(Path(sys.executable).with_name("renderlab"))
    props = tmp_path / "props.json"
    props.write_text(json.dumps({"text": "Bye", "style": "fade-in", "color": "#FFFFFF"}))
    out = tmp_path / "out.mp4"
    size = ["--width", "320", "--height", "180"]
    done = subprocess.run(
        [renderlab, "render", str(props), "-o", str(out), *size],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stderr and "(90 frames" in done.stderr  # (Rich wraps long paths)
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 90
    props.write_text(json.dumps({"text": "Bye", "style": "spin", "color": "#FFFFFF"}))
    refused = subprocess.run(
        [renderlab, "render", str(props), "-o", str(tmp_path / "no.mp4"), *size],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "style" in refused.stderr
    assert not (tmp_path / "no.mp4").exists()
