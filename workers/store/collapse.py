"""Collapse a batch of callbacks into one row per event and one row per message. Pure.

A single multi-row upsert may not touch the same key twice, and collapsing first also means a
burst of callbacks for one message costs one row update, not one per callback.
"""

from __future__ import annotations

from typing import Any

from shared.callback import Callback
from shared.statuses import UNKNOWN_RANK, Ranks, advances, rank, status_bit
from workers.store.rows import EventRow, MessageRow


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
    # sid -> [best, any callback, first received, last received, first final status, conflict,
    #         callbacks, statuses seen as bits]
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
            messages[cb.message_sid] = [
                best, cb, cb.received_at, cb.received_at, final, False, 1, status_bit(cb.status)
            ]  # fmt: skip
            continue
        entry[6] += 1
        entry[7] |= status_bit(cb.status)
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
