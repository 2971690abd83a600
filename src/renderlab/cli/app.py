"""The Typer application every command module registers itself on."""

import typer

app = typer.Typer(
    no_args_is_help=True,
    help="renderlab: render text animations to MP4.",
    rich_markup_mode=None,
)
