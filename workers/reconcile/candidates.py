"""Which messages to fetch from Twilio: flagged ones first, then those whose callbacks are late.

- flagged: `needs_reconcile` (two different final statuses arrived), oldest flag first;
- late: not final (accepted ... sent, or no known status yet) `RECONCILE_AFTER_HOURS` after their
  last status, not fetched within that time either, and created less than
  `RECONCILE_MAX_AGE_DAYS` ago (a carrier that never sends receipts leaves messages `sent` for
  good; they are not fetched forever), oldest first.
Both use an existing index: the partial one on the flag, and (status, created_at), since a
message's last status is never older than its creation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shared.models import Message
from shared.statuses import STATUS_RANKS, Ranks

NOT_FINAL = tuple(s for s, r in STATUS_RANKS.items() if r < Ranks.FINAL)


@dataclass(frozen=True)
class Policy:
    after: timedelta  # RECONCILE_AFTER_HOURS
    max_age: timedelta  # RECONCILE_MAX_AGE_DAYS


def due(session: Session, now: datetime, policy: Policy, limit: int) -> list[str]:
    """Up to `limit` sids to fetch, flagged first."""
    m = Message.__table__.c
    cutoff = now - policy.after
    # A flagged message Twilio did not know (404) keeps its flag; it waits like any other.
    not_recently = or_(m.reconciled_at.is_(None), m.reconciled_at < cutoff)
    flagged = list(
        session.scalars(
            select(m.sid)
            .where(m.needs_reconcile.is_(True), not_recently)
            .order_by(m.reconcile_flagged_at, m.sid)
            .limit(limit)
        )
    )
    room = limit - len(flagged)
    if room <= 0:
        return flagged
    late = session.scalars(
        select(m.sid)
        .where(
            or_(m.status.in_(NOT_FINAL), m.status.is_(None)),
            m.created_at < cutoff,
            m.created_at >= now - policy.max_age,
            func.coalesce(m.status_updated_at, m.callback_received_at) < cutoff,
            not_recently,
            m.needs_reconcile.is_(False),
        )
        .order_by(m.created_at, m.sid)
        .limit(room)
    )
    return flagged + list(late)
