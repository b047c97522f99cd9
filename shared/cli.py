"""The `statuspipe` command."""

from __future__ import annotations

import json
import sys

import click

from shared.config import ConfigError, load_settings, settings_table


def _settings_or_die(*required: str):  # noqa: ANN202 - click callback helper
    try:
        return load_settings().require(*required)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """statuspipe: Twilio status callbacks in, a trustworthy delivery record out."""


@main.command()
def migrate() -> None:
    """Bring the database schema up to date (idempotent)."""
    from shared.migrate import upgrade

    settings = _settings_or_die("database_url")
    upgrade(settings.database_url)
    click.echo("database schema is up to date")


@main.command("test-webhook")
@click.argument("url")
@click.option("--status", default="delivered", show_default=True, help="MessageStatus to send.")
@click.option("--sid", default=None, help="MessageSid (default: a new random SM sid).")
@click.option("--error-code", type=int, default=None, help="ErrorCode to include.")
@click.option("--token", envvar="TWILIO_AUTH_TOKEN", required=True, help="Auth token to sign with.")
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
    from shared.webhook import random_message_sid, sample_fields, send

    sid = sid or random_message_sid()
    code, body = send(url, sample_fields(sid, status, error_code), token, signed_url)
    click.echo(f"{code} {body}".rstrip())
    click.echo(f"MessageSid {sid} status {status}")
    if not 200 <= code < 300:
        sys.exit(1)


@main.command("dead-letters")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def dead_letters(limit: int, as_json: bool) -> None:
    """List callbacks that could not be stored, newest first, with the reason."""
    from sqlalchemy import select

    from shared.db import make_engine, make_sessionmaker
    from shared.models import DeadLetter

    settings = _settings_or_die("database_url")
    sessions = make_sessionmaker(make_engine(settings))
    with sessions() as session:
        rows = session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)).all()
        if not rows:
            click.echo("no dead letters")
            return
        for row in rows:
            if as_json:
                doc = {
                    "id": row.id,
                    "stream_id": row.stream_id,
                    "created_at": str(row.created_at),
                    "reason": row.reason,
                    "entry": row.entry,
                }
                click.echo(json.dumps(doc))
            else:
                click.echo(f"{row.id}\t{row.created_at}\t{row.stream_id}\t{row.reason}")


@main.command("config")
@click.option("--markdown", is_flag=True, help="As the README's Markdown table.")
def show_config(markdown: bool) -> None:
    """List every setting with its environment variable and default."""
    if markdown:
        click.echo("| Variable | Default | Meaning |\n|---|---|---|")
    for env, default, doc in settings_table():
        if markdown:
            cell = doc.replace("|", "\\|")
            click.echo(f"| `{env}` | {f'`{default}`' if default else ''} | {cell} |")
        else:
            click.echo(f"{env:<28} {default or '-':<22} {doc}")


@main.command()
@click.option("--port", default=None, type=int, help="HTTP port (default: PORT or 8000).")
def dev(port: int | None) -> None:
    """Run ingress + worker on embedded defaults (what `make run` calls). Ctrl-C stops all."""
    from shared.devserver import run_dev

    sys.exit(run_dev(port))
