"""``renderlab token NAME``: a zero-setup bearer token, printed alone so scripts can capture it.

TOKEN=$(renderlab token alice)
curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/v1/quota
"""

import typer

from renderlab.cli.app import app


@app.command("token")
def token(name: str = typer.Argument(..., help="Who the token is for, e.g. alice.")) -> None:
    """Print an HS256 token for user NAME (zero-setup identity mode only)."""
    from rich.console import Console

    from renderlab.api.auth import Authenticator, check_token_name
    from renderlab.clock import ms_to_rfc3339
    from renderlab.config import get_settings
    from renderlab.limits import get_limits

    err = Console(stderr=True)
    limits = get_limits()
    try:
        authenticator = Authenticator(get_settings(), limits)
        name = check_token_name(name, limits)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if not authenticator.is_local:
        err.print(
            "[red]error:[/red] an identity provider is configured (RENDERLAB_JWKS_URL); "
            "renderlab does not mint tokens in that mode: sign in with the provider instead."
        )
        raise typer.Exit(2)
    value, expires = authenticator.issue(name)
    typer.echo(value)
    err.print(f"token for {name!r}, valid until {ms_to_rfc3339(expires * 1000)}", highlight=False)
