"""Status order rules: pure functions, no I/O.

Twilio delivers callbacks out of order and more than once, so the current status of a message is
the highest-ranked one seen, never the latest to arrive.
"""

from __future__ import annotations

from enum import IntEnum

UNKNOWN_RANK = -1


class Ranks(IntEnum):
    INITIAL = 0
    QUEUED = 1
    SENDING = 2
    SENT = 3
    FINAL = 4
    READ = 5


STATUS_RANKS: dict[str, int] = {
    "accepted": Ranks.INITIAL,
    "scheduled": Ranks.INITIAL,
    "queued": Ranks.QUEUED,
    "sending": Ranks.SENDING,
    "sent": Ranks.SENT,
    "delivered": Ranks.FINAL,
    "undelivered": Ranks.FINAL,
    "failed": Ranks.FINAL,
    "canceled": Ranks.FINAL,
    "read": Ranks.READ,
}


# One bit per status in `messages.statuses_seen`, so that the report can tell a message's
# duplicate callbacks (callback_count minus the statuses seen) without reading the audit trail.
# Stored values: never renumber, only add. Every unknown status shares OTHER_STATUS_BIT.
STATUS_BITS: dict[str, int] = {
    "accepted": 1 << 0,
    "scheduled": 1 << 1,
    "queued": 1 << 2,
    "sending": 1 << 3,
    "sent": 1 << 4,
    "delivered": 1 << 5,
    "undelivered": 1 << 6,
    "failed": 1 << 7,
    "canceled": 1 << 8,
    "read": 1 << 9,
}
OTHER_STATUS_BIT = 1 << 10
STATUS_BIT_COUNT = 11


def rank(status: str) -> int:
    """Rank of a status; UNKNOWN_RANK for values Twilio added after this table was written."""
    return STATUS_RANKS.get(status, UNKNOWN_RANK)


def is_known(status: str) -> bool:
    return status in STATUS_RANKS


def advances(current_rank: int, incoming_rank: int) -> bool:
    """True when a callback of `incoming_rank` should become the current status.

    Unknown statuses never move the current status; equal ranks keep the first one seen.
    """
    return incoming_rank != UNKNOWN_RANK and incoming_rank > current_rank


def is_conflict(current: str | None, incoming: str) -> bool:
    """Two different final statuses (e.g. delivered then undelivered) for one message.

    The first one is kept; the message is flagged for reconciliation against Twilio's API.
    """
    return (
        current is not None
        and current != incoming
        and rank(current) == Ranks.FINAL
        and rank(incoming) == Ranks.FINAL
    )


def status_bit(status: str) -> int:
    """The bit of `status` in `messages.statuses_seen`."""
    return STATUS_BITS.get(status, OTHER_STATUS_BIT)
