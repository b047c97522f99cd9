"""The `statuspipe` command: one click group, one module per command group.

The only package that may import `ingest`, `workers` and `shared` alike (nothing imports it).
Commands import the heavier modules (Alembic, the models, devtools) when they run.
"""

from __future__ import annotations

import click

from cli import callbacks, codes, config, db, dev, messages, reconcile, reports, verify


@click.group()
def main() -> None:
    """statuspipe: Twilio status callbacks in, a trustworthy delivery record out."""


for _command in (
    db.migrate,
    dev.test_webhook,
    db.dead_letters,
    config.show_config,
    dev.dev,
    messages.send,
    codes.codes,
    callbacks.configure_callback,
    reports.report,
    reports.drop_check,
    reconcile.reconcile,
    verify.verify,
):
    main.add_command(_command)
