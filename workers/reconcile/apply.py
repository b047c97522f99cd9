"""Store what Twilio's API says of one message, with the rules callbacks are stored with.

- The status only moves to a higher rank (the guard is in the UPDATE's WHERE too, so a callback
  stored meanwhile by the drain is never overwritten by an older answer).
- A message flagged `needs_reconcile` (two different final statuses arrived) is settled: Twilio's
  final status replaces the one kept, since Twilio's own record is the tie-breaker.
- The answer is an audit event whose source is `reconcile` (nothing is written when a callback
  already brought that status), and the flag is cleared.
- A message that only now, by this fetch, reaches a final status counts as a lost callback
  (`settled_by_reconcile`): the report's callback-loss rate.
Running it twice with the same answer changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.models import Message, MessageEvent
from shared.statuses import Ranks, rank
from workers.store.portable import insert_for

SOURCE = "reconcile"


@dataclass(frozen=True)
class Fetched:
    """The fields of Twilio's Message resource that reconciliation uses."""

    sid: str
    status: str
    error_code: int | None
    error_message: str | None
    date_updated: datetime | None

    @classmethod
    def from_instance(cls, message: Any) -> Fetched:
        """From twilio-python's MessageInstance."""
        code = message.error_code
        return cls(
            sid=message.sid,
            status=str(message.status),
            error_code=int(code) if code not in (None, "", 0) else None,
            error_message=message.error_message or None,
            date_updated=message.date_updated,
        )

    def form(self) -> str:
        """The answer as a callback-shaped form, for the audit trail's `raw`."""
        fields = {"MessageSid": self.sid, "MessageStatus": self.status}
        if self.error_code is not None:
            fields["ErrorCode"] = str(self.error_code)
        if self.error_message:
            fields["ErrorMessage"] = self.error_message
        if self.date_updated is not None:
            fields["DateUpdated"] = self.date_updated.astimezone(UTC).isoformat()
        return urlencode(fields)


@dataclass(frozen=True)
class Applied:
    sid: str
    before: str | None
    after: str | None
    changed: bool  # the current status moved, or a conflict was settled
    settled: bool  # this answer brought the message's first final status


def apply_fetched(session: Session, fetched: Fetched, now: datetime) -> Applied | None:
    """Store one answer in the caller's transaction; None when statuspipe has no such message."""
    m = Message.__table__.c
    row = session.execute(
        select(m.status, m.status_rank, m.created_at, m.needs_reconcile, m.final_status)
        .where(m.sid == fetched.sid)
        .with_for_update()
    ).first()
    if row is None:
        return None
    incoming = rank(fetched.status)
    # Twilio's time of the change, not ours: time-to-delivered stays what it was.
    when = max(fetched.date_updated or now, row.created_at)
    moved = {
        m.status: fetched.status,
        m.status_rank: incoming,
        m.error_code: fetched.error_code,
        m.error_message: fetched.error_message,
        m.status_updated_at: when,
    }
    changed = settled = False
    if incoming > row.status_rank:
        values = dict(moved)
        if incoming == Ranks.FINAL and row.final_status is None:
            values[m.final_status] = fetched.status
        settled = row.status_rank < Ranks.FINAL <= incoming
        if settled:
            values[m.settled_by_reconcile] = True
        result = session.execute(
            update(Message.__table__)
            .where(m.sid == fetched.sid, m.status_rank < incoming)
            .values(values)
        )
        changed = result.rowcount == 1
    elif (
        row.needs_reconcile
        and incoming == row.status_rank == Ranks.FINAL
        and fetched.status != row.status
    ):
        session.execute(
            update(Message.__table__)
            .where(m.sid == fetched.sid)
            .values({**moved, m.final_status: fetched.status})
        )
        changed = True
    session.execute(
        update(Message.__table__)
        .where(m.sid == fetched.sid)
        .values(needs_reconcile=False, reconcile_flagged_at=None, reconciled_at=now)
    )
    session.execute(
        insert_for(session, MessageEvent.__table__)
        .values(
            message_sid=fetched.sid,
            status=fetched.status,
            error_code=fetched.error_code,
            error_message=fetched.error_message,
            idempotency_token=None,
            received_at=now,
            processed_at=now,
            duplicate_count=0,
            raw=fetched.form(),
            source=SOURCE,
        )
        .on_conflict_do_nothing(index_elements=["message_sid", "status"])
    )
    return Applied(
        fetched.sid, row.status, fetched.status if changed else row.status, changed, settled
    )
