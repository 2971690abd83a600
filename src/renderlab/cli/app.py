"""The Typer application every command module registers itself on, and the console its
commands speak to people through."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    no_args_is_help=True,
    help="renderlab: text animations rendered to MP4, WebM, MOV or GIF, here or as a service.",
    rich_markup_mode=None,
)


def stderr() -> Console:
    """Rich's console on stderr for messages to people, unhighlighted and unwrapped (written to
    a file or a pipe, a line stays one line). Rich is imported here, by the command that
    speaks, not by every command at start-up."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def refuse(message: str, console: Console | None = None) -> typer.Exit:
    """Say ``error: message`` on stderr; the exit (status 2) for the caller to raise."""
    (console or stderr()).print(f"[red]error:[/red] {message}")
    return typer.Exit(2)
