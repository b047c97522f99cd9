"""The rows a batch writes: one column list per table, and the row shapes that fill them.

Each table's columns are listed once, here, with the type they have in PostgreSQL's COPY staging
table: the staging DDL, the COPY column order, the `INSERT ... SELECT` column lists
(workers/store/postgres.py) and the dicts the portable statements send
(workers/store/portable.py) are all derived from these lists. A row's `columns()` gives its
values in the same order; tests/unit/workers/test_store_columns.py checks that both backends
write the same columns and that each one exists in the model table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.callback import Callback
from shared.statuses import UNKNOWN_RANK, rank


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a model table as a batch writes it."""

    name: str  # in the model table
    stage_type: str  # in the COPY staging table
    # Receive times travel as the epoch seconds the ingress stamped and become timestamps in the
    # database: formatting datetimes in Python cost more than the rest of a row.
    epoch: bool = False

    @property
    def staged(self) -> str:
        """Its name in the staging table, which says epoch (`created_at` -> `created_epoch`)."""
        return self.name.removesuffix("_at") + "_epoch" if self.epoch else self.name


EVENT_COLUMNS = (
    Column("message_sid", "varchar(34)"),
    Column("status", "varchar(32)"),
    Column("error_code", "integer"),
    Column("error_message", "text"),
    Column("idempotency_token", "text"),
    Column("received_at", "float8", epoch=True),
    Column("duplicate_count", "integer"),
    Column("raw", "text"),
    Column("url_query", "text"),
)
MESSAGE_COLUMNS = (
    Column("sid", "varchar(34)"),
    Column("account_sid", "text"),
    Column("to", "text"),
    Column("from", "text"),
    Column("messaging_service_sid", "text"),
    Column("status", "varchar(32)"),
    Column("status_rank", "smallint"),
    Column("error_code", "integer"),
    Column("error_message", "text"),
    Column("created_at", "float8", epoch=True),
    Column("status_updated_at", "float8", epoch=True),
    Column("callback_received_at", "float8", epoch=True),
    Column("carrier_done_at", "timestamptz"),
    Column("final_status", "varchar(32)"),
    Column("needs_reconcile", "boolean"),
    Column("callback_count", "integer"),
    Column("statuses_seen", "integer"),
)
EVENT_NAMES = tuple(c.name for c in EVENT_COLUMNS)
MESSAGE_NAMES = tuple(c.name for c in MESSAGE_COLUMNS)
_EPOCH_EVENT_NAMES = tuple(c.name for c in EVENT_COLUMNS if c.epoch)
_EPOCH_MESSAGE_NAMES = tuple(c.name for c in MESSAGE_COLUMNS if c.epoch)


@dataclass(slots=True)
class EventRow:
    """One (message, status) pair of a batch; `duplicates` more callbacks carried it."""

    first: Callback
    duplicates: int

    def columns(self) -> list[Any]:
        """The values in the order of EVENT_COLUMNS (a list literal: this runs for every row)."""
        cb = self.first
        return [cb.message_sid, cb.status, cb.error_code, cb.error_message, cb.idempotency_token,
                cb.received_at, self.duplicates, cb.raw, cb.url_query]  # fmt: skip

    def values(self) -> dict[str, Any]:
        """The row by column name, receive times as datetimes (the portable statements)."""
        return _named(EVENT_NAMES, self.columns(), _EPOCH_EVENT_NAMES)


@dataclass(slots=True)
class MessageRow:
    """The batch's view of one message: its best callback, first and last receipt times."""

    best: Callback | None  # highest-ranked known status; None if only unknown statuses came
    any_callback: Callback
    first_received: float  # epoch seconds
    last_received: float
    final_status: str | None = None  # the first final status received in the batch
    conflict: bool = False  # the batch itself holds two different final statuses
    callbacks: int = 0  # callbacks of the batch for this message, duplicates included
    statuses_seen: int = 0  # their statuses as bits (shared/statuses.py STATUS_BITS)

    def columns(self) -> list[Any]:
        """The values in the order of MESSAGE_COLUMNS (list literals: this runs for every row)."""
        cb = self.best
        if cb is None:
            # Only unknown statuses came: the message exists, with no current status yet.
            any_cb = self.any_callback
            return [any_cb.message_sid, any_cb.account_sid, any_cb.to, any_cb.from_,
                    any_cb.messaging_service_sid, None, UNKNOWN_RANK, None, None,
                    self.first_received, None, self.last_received, None, self.final_status,
                    self.conflict, self.callbacks, self.statuses_seen]  # fmt: skip
        return [cb.message_sid, cb.account_sid, cb.to, cb.from_, cb.messaging_service_sid,
                cb.status, rank(cb.status), cb.error_code, cb.error_message, self.first_received,
                cb.received_at, self.last_received, cb.carrier_done_at, self.final_status,
                self.conflict, self.callbacks, self.statuses_seen]  # fmt: skip

    def values(self) -> dict[str, Any]:
        """The row by column name, receive times as datetimes (the portable statements)."""
        return _named(MESSAGE_NAMES, self.columns(), _EPOCH_MESSAGE_NAMES)


def _named(names: tuple[str, ...], values: list[Any], epochs: tuple[str, ...]) -> dict[str, Any]:
    row = dict(zip(names, values, strict=True))
    for key in epochs:
        if row[key] is not None:
            row[key] = datetime.fromtimestamp(row[key], UTC)
    return row
