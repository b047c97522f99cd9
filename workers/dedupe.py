"""Collapse a batch of callbacks into one row per event and one row per message. Pure.

A single multi-row upsert may not touch the same key twice, and collapsing first also means a
burst of callbacks for one message costs one row update, not one per callback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.callback import Callback
from shared.statuses import UNKNOWN_RANK, Ranks, advances, rank

# Column order of columns(), shared by the portable statements (as dict keys) and the COPY
# staging tables of workers/persist_postgres.py. Receive times are epoch seconds in columns().
EVENT_COLUMNS = ("message_sid", "status", "error_code", "error_message", "idempotency_token",
                 "received_at", "duplicate_count", "raw", "url_query")  # fmt: skip
MESSAGE_COLUMNS = ("sid", "account_sid", "to", "from", "messaging_service_sid", "status",
                   "status_rank", "error_code", "error_message", "created_at", "status_updated_at",
                   "callback_received_at", "carrier_done_at", "final_status",
                   "needs_reconcile")  # fmt: skip
_EPOCH_MESSAGE_COLUMNS = ("created_at", "status_updated_at", "callback_received_at")


@dataclass(slots=True)
class EventRow:
    """One (message, status) pair of a batch; `duplicates` more callbacks carried it."""

    first: Callback
    duplicates: int

    def columns(self) -> list[Any]:
        cb = self.first
        return [cb.message_sid, cb.status, cb.error_code, cb.error_message, cb.idempotency_token,
                cb.received_at, self.duplicates, cb.raw, cb.url_query]  # fmt: skip

    def values(self) -> dict[str, Any]:
        row = dict(zip(EVENT_COLUMNS, self.columns(), strict=True))
        row["received_at"] = _utc(row["received_at"])
        return row


@dataclass(slots=True)
class MessageRow:
    """The batch's view of one message: its best callback, first and last receipt times."""

    best: Callback | None  # highest-ranked known status; None if only unknown statuses came
    any_callback: Callback
    first_received: float  # epoch seconds
    last_received: float
    final_status: str | None = None  # the first final status received in the batch
    conflict: bool = False  # the batch itself holds two different final statuses

    def columns(self) -> list[Any]:
        cb = self.best
        if cb is None:
            # Only unknown statuses came: the message exists, with no current status yet.
            any_cb = self.any_callback
            return [any_cb.message_sid, any_cb.account_sid, any_cb.to, any_cb.from_,
                    any_cb.messaging_service_sid, None, UNKNOWN_RANK, None, None,
                    self.first_received, None, self.last_received, None, self.final_status,
                    self.conflict]  # fmt: skip
        return [cb.message_sid, cb.account_sid, cb.to, cb.from_, cb.messaging_service_sid,
                cb.status, rank(cb.status), cb.error_code, cb.error_message, self.first_received,
                cb.received_at, self.last_received, cb.carrier_done_at, self.final_status,
                self.conflict]  # fmt: skip

    def values(self) -> dict[str, Any]:
        row = dict(zip(MESSAGE_COLUMNS, self.columns(), strict=True))
        for key in _EPOCH_MESSAGE_COLUMNS:
            if row[key] is not None:
                row[key] = _utc(row[key])
        return row


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _sort_key(cb: Callback) -> tuple[float, str]:
    return (cb.received_at, cb.stream_id)


def collapse(callbacks: list[Callback]) -> tuple[list[EventRow], list[MessageRow]]:
    """Group callbacks by (sid, status) and by sid.

    The earliest-received callback of a pair is the one kept; within a message the highest rank
    wins and, among equal ranks, the first received. The first final status is kept apart: a
    different final status, in this batch or a later one, is a conflict to reconcile. Rows come
    back sorted by key so that concurrent workers lock rows in the same order and cannot
    deadlock each other.
    """
    ordered = sorted(callbacks, key=_sort_key)
    events: dict[tuple[str, str], list[Any]] = {}
    # sid -> [best, any callback, first received, last received, first final status, conflict]
    messages: dict[str, list[Any]] = {}
    for cb in ordered:
        key = (cb.message_sid, cb.status)
        if key in events:
            events[key][1] += 1
        else:
            events[key] = [cb, 0]

        cb_rank = rank(cb.status)
        final = cb.status if cb_rank == Ranks.FINAL else None
        entry = messages.get(cb.message_sid)
        if entry is None:
            best = cb if cb_rank != UNKNOWN_RANK else None
            messages[cb.message_sid] = [best, cb, cb.received_at, cb.received_at, final, False]
            continue
        best = entry[0]
        if advances(rank(best.status) if best else UNKNOWN_RANK, cb_rank):
            entry[0] = cb
        entry[3] = cb.received_at  # ordered, so the last one seen is the latest
        if final:
            if entry[4] is None:
                entry[4] = final
            elif entry[4] != final:
                entry[5] = True

    event_rows = [EventRow(first=v[0], duplicates=v[1]) for _, v in sorted(events.items())]
    message_rows = [MessageRow(*v) for _, v in sorted(messages.items())]
    return event_rows, message_rows
