"""The actions outbox: decisions written in the transaction that stores the failures.

A failure and the decision it causes commit together or not at all, so a worker that dies after
the commit loses no action (the sweeper finds it pending), and one that dies before it leaves
both to be stored again by whoever takes its entries over. The unique message_sid makes
duplicate, redelivered and concurrent failure callbacks produce one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.error_codes import ErrorCodeMap
from shared.models import Action
from workers.actions.decide import FAILURE_STATUSES, plan_actions
from workers.store.rows import EventRow


def record_actions(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert the rows no earlier failure of the same message produced; their ids."""
    if not rows:
        return []
    table = Action.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    stmt = insert.on_conflict_do_nothing(index_elements=["message_sid"]).returning(table.c.id)
    return list(session.scalars(stmt, list(rows)))


class ActionPlanner:
    """The drain's hook (store_batch's `plan_actions`): the outbox rows a batch's new audit rows
    call for. Costs one pass over the batch's events and, only when some failed with a code
    that is acted on, one INSERT."""

    def __init__(self, codes: ErrorCodeMap) -> None:
        self.codes = codes

    def __call__(self, session: Session, event_rows: list[EventRow]) -> list[int]:
        failures = [
            (row.first.message_sid, row.first.status, row.first.error_code)
            for row in event_rows
            if row.first.status in FAILURE_STATUSES
        ]
        if not failures:
            return []
        return record_actions(session, plan_actions(failures, self.codes, datetime.now(UTC)))
