"""``renderlab webhook-secret``: print the Standard Webhooks secret receivers verify with.

Printed alone on stdout so a deploy script can capture it; which data dir (or variable) it
came from goes to stderr. Made in the data dir if ``serve`` has not made it yet: the same
file, so the two agree whichever runs first.
"""

import typer

from renderlab.cli.app import app, refuse, stderr


@app.command("webhook-secret", short_help="Print the webhook signing secret.")
def show_webhook_secret() -> None:
    """Print the webhook signing secret (RENDERLAB_WEBHOOK_SECRET or the data dir's)."""
    from renderlab.config import get_settings
    from renderlab.webhooks import webhook_secret

    err = stderr()
    settings = get_settings()
    try:
        value = webhook_secret(settings)
    except (ValueError, OSError) as exc:
        raise refuse(str(exc), err) from None
    typer.echo(value)
    source = (
        "RENDERLAB_WEBHOOK_SECRET"
        if settings.webhook_secret
        else f"the data dir {settings.data_path}"
    )
    err.print(f"webhook secret from {source}")
