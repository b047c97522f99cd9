"""Database commands: `statuspipe migrate` (the release phase) and `statuspipe dead-letters`
(list, replay)."""

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


@click.group("dead-letters", invoke_without_command=True)
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def dead_letters(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Callbacks that could not be stored: list them (the default), or replay them."""
    if ctx.invoked_subcommand is None:
        _list_dead_letters(limit, as_json)


@dead_letters.command("list")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_dead_letters(limit: int, as_json: bool) -> None:
    """List callbacks that could not be stored, newest first, with the reason."""
    _list_dead_letters(limit, as_json)


def _list_dead_letters(limit: int, as_json: bool) -> None:
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


@dead_letters.command("replay")
@click.argument("ids", nargs=-1, type=int)
@click.option("--reason", help="Replay the dead letters whose reason contains this text.")
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
def replay_dead_letters(ids: tuple[int, ...], reason: str | None, replay_all: bool) -> None:
    """Put dead letters back through the store (after a fix or a migration). Each one stored
    is removed; what still fails stays, with the new reason. Exit 1 if any still fails."""
    from shared.bootstrap import error_code_map
    from shared.db import make_sessionmaker
    from workers.actions.outbox import ActionPlanner
    from workers.store.replay import replay, select_ids

    chosen = sum([bool(ids), reason is not None, replay_all])
    if chosen != 1:
        raise click.UsageError("name dead letters by ID, or give --reason TEXT, or --all (one)")
    settings = load("database_url")
    sessions = make_sessionmaker(open_database(settings.database_url))
    with sessions() as session:
        wanted = select_ids(session, ids, reason)
    missing = sorted(set(ids) - set(wanted))
    if not wanted and not missing:
        click.echo("no dead letters to replay")
        return
    # As the drain does: failures among them are acted on (the actions sweeper dispatches).
    planner = ActionPlanner(error_code_map(settings)) if settings.act_on_failures else None
    result = replay(sessions, wanted, planner)
    for letter_id in result.stored:
        note = " (its status was stored already: counted as a duplicate)"
        click.echo(f"{letter_id}\tstored{note if letter_id in result.duplicates else ''}")
    for letter_id, why in result.failed.items():
        click.echo(f"{letter_id}\tstill failing: {why}")
    for letter_id in sorted({*missing, *result.not_found}):
        click.echo(f"{letter_id}\tno such dead letter (replayed already?)")
    not_found = len(missing) + len(result.not_found)
    summary = f"replayed {len(result.stored)}, still failing {len(result.failed)}"
    click.echo(summary + (f", not found {not_found}" if not_found else ""))
    if result.failed:
        raise SystemExit(1)
