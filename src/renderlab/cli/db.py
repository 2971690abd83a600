"""``renderlab db upgrade``: apply migrations to the configured database."""

import typer

from renderlab.cli.app import app, stderr

db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head", help="Alembic revision to upgrade to."),
) -> None:
    """Apply migrations to RENDERLAB_DATABASE_URL (default: the embedded SQLite file)."""
    from renderlab.config import get_settings
    from renderlab.db import upgrade

    url = get_settings().resolved_database_url()
    upgrade(url, revision)
    stderr().print(f"[green]database at {revision}[/green]")
