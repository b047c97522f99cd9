"""Commands for trying statuspipe out: `statuspipe dev` (what `make run` calls) and
`statuspipe test-webhook`."""

from __future__ import annotations

import sys

import click

from cli.settings import dev_auth_token

# devtools/ is not in the production image (deploy/Dockerfile): it needs the checkout anyway,
# for the Procfile and var/.
NOT_IN_A_CHECKOUT = (
    "the dev runner only works in a checkout of statuspipe (git clone, then `make run`);"
    " this install has no devtools/"
)


@click.command("test-webhook")
@click.argument("url")
@click.option("--status", default="delivered", show_default=True, help="MessageStatus to send.")
@click.option("--sid", default=None, help="MessageSid (default: a new random SM sid).")
@click.option("--error-code", type=int, default=None, help="ErrorCode to include.")
@click.option(
    "--token",
    envvar="TWILIO_AUTH_TOKEN",
    default=dev_auth_token,
    required=True,
    help="Auth token to sign with (default: TWILIO_AUTH_TOKEN, else `make run`'s).",
)
@click.option("--signed-url", default=None, help="URL Twilio would sign, if not URL (proxies).")
def test_webhook(
    url: str,
    status: str,
    sid: str | None,
    error_code: int | None,
    token: str,
    signed_url: str | None,
) -> None:
    """Send a correctly signed sample status callback to URL and print the answer."""
    from cli.sample_callback import random_message_sid, sample_fields, send

    sid = sid or random_message_sid()
    try:
        code, body = send(url, sample_fields(sid, status, error_code), token, signed_url)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise click.ClickException(f"cannot send to {url}: {reason}") from None
    click.echo(f"{code} {body}".rstrip())
    click.echo(f"MessageSid {sid} status {status}")
    if not 200 <= code < 300:
        sys.exit(1)


@click.command()
@click.option("--port", default=None, type=int, help="HTTP port (default: PORT or 8000).")
def dev(port: int | None) -> None:
    """Run the Procfile on embedded defaults (what `make run` calls). Ctrl-C stops all."""
    try:
        from devtools.devserver import run_dev
    except ImportError as exc:
        if exc.name not in {"devtools", "devtools.devserver"}:
            raise
        raise click.ClickException(NOT_IN_A_CHECKOUT) from None
    sys.exit(run_dev(port))
