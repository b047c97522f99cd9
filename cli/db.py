"""Database commands: `statuspipe migrate` (the release phase) and `statuspipe dead-letters`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
from sqlalchemy import Engine

from cli.database import open_database
from cli.settings import load

if TYPE_CHECKING:
    from alembic.script import Script


def _current_revisions(engine: Engine) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return tuple(MigrationContext.configure(conn).get_current_heads())


def _applied(database_url: str, before: tuple[str, ...], after: tuple[str, ...]) -> list[Script]:
    """The revisions between `before` and `after`, oldest first."""
    from alembic.script import ScriptDirectory

    from shared.migrate import alembic_config

    if before == after:
        return []
    scripts = ScriptDirectory.from_config(alembic_config(database_url))
    return list(reversed(list(scripts.iterate_revisions(after, before or "base"))))


@click.command()
def migrate() -> None:
    """Bring the database schema up to date (idempotent); print each revision applied."""
    from shared.migrate import upgrade

    settings = load("database_url")
    engine = open_database(settings.database_url)
    try:
        before = _current_revisions(engine)
        upgrade(settings.database_url)
        after = _current_revisions(engine)
    finally:
        engine.dispose()
    applied = _applied(settings.database_url, before, after)
    for script in applied:
        click.echo(f"applied {script.revision}: {script.doc}")
    at = ", ".join(after) or "base"
    if applied:
        click.echo(f"database schema is up to date at {at}")
    else:
        click.echo(f"database schema was already up to date at {at}")


@click.command("dead-letters")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def dead_letters(limit: int, as_json: bool) -> None:
    """List callbacks that could not be stored, newest first, with the reason."""
    from sqlalchemy import select

    from shared.db import make_sessionmaker
    from shared.models import DeadLetter

    settings = load("database_url")
    sessions = make_sessionmaker(open_database(settings.database_url))
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
