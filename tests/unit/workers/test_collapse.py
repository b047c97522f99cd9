from datetime import UTC, datetime, timedelta

import pytest

from shared.callback import Callback
from shared.statuses import status_bit
from workers.store.collapse import collapse

T0 = datetime(2026, 1, 1, tzinfo=UTC)
A = "SM" + "a" * 32
B = "SM" + "b" * 32


def cb(sid, status, second, code=None, stream_id=None):
    return Callback(
        stream_id=stream_id or f"{second}-0",
        message_sid=sid,
        status=status,
        error_code=code,
        error_message=None,
        account_sid=None,
        to="+1",
        from_="+2",
        messaging_service_sid=None,
        idempotency_token=None,
        received_at=(T0 + timedelta(seconds=second)).timestamp(),
        carrier_done_at=None,
        raw="",
    )


@pytest.mark.parametrize(
    ("arrivals", "status", "rank"),
    [
        ([("sent", 1), ("delivered", 2)], "delivered", 4),
        ([("delivered", 1), ("sent", 2)], "delivered", 4),  # out of order
        ([("sent", 1), ("sent", 2)], "sent", 3),
        ([("delivered", 1), ("undelivered", 2)], "delivered", 4),  # first final wins
        ([("undelivered", 1), ("delivered", 2)], "undelivered", 4),
        ([("queued", 3), ("read", 1), ("delivered", 2)], "read", 5),
        ([("mystery", 1)], None, -1),  # unknown never becomes current
        ([("mystery", 1), ("sent", 2)], "sent", 3),
    ],
)
def test_message_row_takes_highest_rank(arrivals, status, rank):
    _, messages = collapse([cb(A, s, t) for s, t in arrivals])
    (row,) = messages
    values = row.values()
    assert values["status"] == status
    assert values["status_rank"] == rank
    assert values["created_at"] == T0 + timedelta(seconds=min(t for _, t in arrivals))
    assert values["callback_received_at"] == T0 + timedelta(seconds=max(t for _, t in arrivals))


def test_duplicates_collapse_into_one_event_with_a_count():
    events, _ = collapse([cb(A, "delivered", s) for s in (3, 1, 2, 5, 4)])
    (row,) = events
    assert row.duplicates == 4
    assert row.values()["received_at"] == T0 + timedelta(seconds=1)


def test_error_code_follows_the_winning_status():
    _, messages = collapse([cb(A, "undelivered", 2, code=30003), cb(A, "sent", 1)])
    assert messages[0].values()["error_code"] == 30003


def test_rows_are_sorted_by_key_so_workers_lock_in_the_same_order():
    events, messages = collapse([cb(B, "sent", 1), cb(A, "sent", 2), cb(A, "delivered", 3)])
    assert [m.values()["sid"] for m in messages] == [A, B]
    assert [(e.first.message_sid, e.first.status) for e in events] == [
        (A, "delivered"),
        (A, "sent"),
        (B, "sent"),
    ]


@pytest.mark.parametrize(
    ("arrivals", "callbacks", "statuses"),
    [
        (["sent"], 1, {"sent"}),
        (["sent", "delivered"], 2, {"sent", "delivered"}),
        (["sent", "sent", "delivered", "delivered"], 4, {"sent", "delivered"}),
        (["mystery", "other-mystery"], 2, {"mystery"}),  # unknown statuses share one bit
    ],
)
def test_message_row_counts_callbacks_and_the_statuses_they_carried(arrivals, callbacks, statuses):
    _, messages = collapse([cb(A, s, t) for t, s in enumerate(arrivals)])
    (row,) = messages
    values = row.values()
    assert values["callback_count"] == callbacks
    bits = 0
    for status in statuses:
        bits |= status_bit(status)
    assert values["statuses_seen"] == bits
