"""The status changes an earlier delivery stored but never published.

The drain publishes a batch's changes in the same Redis transaction (MULTI/EXEC) as its XACK
(workers/drain/loop.py): an entry still pending was therefore never published, whether its
worker died after its commit or lost Redis before its XACK. When such an
entry comes back and its receipt says it is stored already, the audit row it created is
still unpublished. Which row it created: the one of its (MessageSid, MessageStatus) whose
receive time is the entry's own (the ingress stamps each entry; a later duplicate of the
pair carries a later stamp and created nothing).

Only entries that were redelivered take this path: a query on the rare path, none on the hot
one. (An operator who rewinds the consumer group over acknowledged entries gets their changes
published a second time.)
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from shared.callback import Callback
from shared.models import MessageEvent
from shared.timefmt import epoch_micros
from workers.store.rows import EventRow

CHUNK = 500  # pairs per query
# PostgreSQL keeps microseconds, the entry's stamp a float: equal within one microsecond.
SAME_MICROS = 1


def unpublished_changes(session: Session, redelivered: Sequence[Callback]) -> list[EventRow]:
    """The audit rows that these redelivered callbacks created, as changes to publish."""
    by_pair: dict[tuple[str, str], list[Callback]] = {}
    for cb in redelivered:
        by_pair.setdefault((cb.message_sid, cb.status), []).append(cb)
    pairs = list(by_pair)
    changes: list[EventRow] = []
    for start in range(0, len(pairs), CHUNK):
        chunk = pairs[start : start + CHUNK]
        stored = session.execute(
            select(MessageEvent.message_sid, MessageEvent.status, MessageEvent.received_at).where(
                tuple_(MessageEvent.message_sid, MessageEvent.status).in_(chunk)
            )
        )
        for sid, status, received_at in stored:
            at = epoch_micros(received_at)
            for cb in by_pair[(sid, status)]:
                if abs(round(cb.received_at * 1_000_000) - at) <= SAME_MICROS:
                    changes.append(EventRow(cb, 0))
                    break
    return changes
