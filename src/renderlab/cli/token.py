"""``renderlab token NAME``: a bearer token, printed alone so scripts can capture it.

TOKEN=$(renderlab token alice)
curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/v1/quota

It finds the data dir exactly as ``serve`` does (``RENDERLAB_DATA_DIR``, else
``./renderlab-data`` from the current directory) and says on stderr which one it used, since a
token signed with another dir's secret is refused by the server. When that dir has no secret
yet (no server has run there), the secret it makes is said so on stderr: run from the wrong
directory, the token would not work with the server running elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from renderlab.cli.app import app, refuse, stderr

if TYPE_CHECKING:
    from renderlab.config import Settings


@app.command("token", short_help="Print a token for user NAME (zero-setup sign-in).")
def token(
    name: str = typer.Argument(..., metavar="NAME", help="Who the token is for, e.g. alice."),
) -> None:
    """Print an HS256 token for user NAME (RENDERLAB_AUTH dev, or hs256 with the secret)."""
    from renderlab.api.auth import Authenticator, check_token_name
    from renderlab.clock import ms_to_rfc3339
    from renderlab.config import get_settings
    from renderlab.limits import get_limits

    err = stderr()
    settings, limits = get_settings(), get_limits()
    if settings.auth_mode == "jwks":
        raise refuse(
            "RENDERLAB_AUTH=jwks (an identity provider, RENDERLAB_JWKS_URL): "
            "renderlab does not mint tokens in that mode: sign in with the provider instead.",
            err,
        )
    err.print(_secret_source(settings))
    try:
        authenticator = Authenticator(settings, limits)
        name = check_token_name(name, limits)
    except ValueError as exc:
        raise refuse(str(exc), err) from None
    value, expires = authenticator.issue(name)
    typer.echo(value)
    err.print(f"token for {name!r}, valid until {ms_to_rfc3339(expires * 1000)}")


def _secret_source(settings: Settings) -> str:
    """Which secret signs the token, and a warning when it is new (made by this command)."""
    from renderlab.api.auth import SECRET_FILE

    if settings.jwt_secret:
        return f"signed with RENDERLAB_JWT_SECRET (RENDERLAB_AUTH={settings.auth_mode})"
    path = settings.data_path / SECRET_FILE
    if path.exists():
        return f"data dir: {settings.data_path} (its secret, as `renderlab serve` there uses)"
    return (
        f"[yellow]warning:[/yellow] data dir {settings.data_path} has no secret yet (no "
        "`renderlab serve` has run with it): making a new one. A server using another data "
        "dir will refuse this token; set RENDERLAB_DATA_DIR to the server's data dir."
    )
