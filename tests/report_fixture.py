"""A hand-computed delivery-report fixture: 55 messages over 8 days (2026-01-08 .. 15, UTC),
stored through the drain's own store (store_batch) and, for two lost callbacks, through
reconciliation's (apply_fetched). EXPECTED_DAY8 is worked out by hand below, not by the code.

Day 8 (2026-01-15), message k created at 10:00 + k minutes; offsets in seconds after that:

 k  sender  callbacks (status@s)                       current      code   carrier done ttd latency
 0  A       sent@0 delivered@5 delivered@7 (dup)       delivered    -      10:00         5    5
 1  A       sent@0 sent@1 (dup) delivered@10           delivered    -      10:01         10   10
 2  A       sent@0 delivered@20                         delivered                         20
 3  A       sent@0 delivered@30                         delivered                         30
 4  A       sent@0 delivered@40                         delivered                         40
 5  A       sent@0 delivered@60                         delivered                         60
 6  A       sent@0; reconcile: delivered, updated @90   delivered                         90
 7  A       sent@0; reconcile: delivered, updated @120  delivered                         120
 8  B       sent@0 delivered@3 read@100                 read                              100
 9  B       sent@0 read@50                              read                              50
10  B       sent@0 undelivered@30 undelivered@31 (dup)  undelivered  30003  10:10              30
11  B       sent@0 undelivered@45                       undelivered  30003  10:11              45
12  B       sent@0 undelivered@20                       undelivered  30007
13  A       failed@0                                    failed       30008
14  A       failed@0                                    failed       -
15  A       sent@0                                      sent
16  A       queued@0 sent@2                             sent
17  A       queued@0                                    queued
18  B       canceled@0                                  canceled
19  B       partially_delivered@0                       (unknown)

total 20; settled = 8 delivered + 2 read + 3 undelivered + 2 failed = 15
delivery 10/15, undelivered 3/15, failed 2/15, no receipt 2 sent / (15 + 2)
time to delivered (10 values) sorted 5 10 20 30 40 50 60 90 100 120: avg 525/10 = 52.5;
  p50 = rank ceil(5) = 5th = 40; p95 = rank ceil(9.5) = 10th = 120
callback latency sorted 5 10 30 45: p50 = rank 2 = 10; p95 = rank ceil(3.8) = 4th = 45
callbacks 36, distinct statuses 33 (three duplicates): duplicate rate 3/36
final (delivered, read, undelivered, failed, canceled) 16, two by reconciliation: loss 2/16
by code: 30003 x2, 30007 x1, 30008 x1, none x1
by sender: A 13 messages, 8 delivered of 10 settled; B 7 messages, 2 delivered of 5 settled

Days 1-7 (2026-01-08 .. 14): 5 messages each from A, created 12:00 + k minutes, sent@0 then
delivered@10 (k = 0..3) and undelivered 30003 @10 (k = 4); on day 3 (2026-01-10) all five are
delivered. Baseline over days 1-7: 29 delivered of 35 settled.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from shared.callback import Callback
from tests.twilio_fixtures import ACCOUNT, new_sid
from workers.reconcile.apply import Fetched, apply_fetched
from workers.store import store_batch

SENDER_A = "+15005550001"
SENDER_B = "+15005550002"
DAY8 = date(2026, 1, 15)
_stream = count(1)

# A callback of a message: status, seconds after its creation, error code, carrier done minute.
Step = tuple[str, float, int | None, int | None]


def s(status: str, offset: float, code: int | None = None, done: int | None = None) -> Step:
    return (status, offset, code, done)


# (sender, callbacks, seconds after creation that Twilio's lost final status dates from)
DAY8_MESSAGES: list[tuple[str, list[Step], float | None]] = [
    (SENDER_A, [s("sent", 0), s("delivered", 5, None, 0), s("delivered", 7, None, 0)], None),
    (SENDER_A, [s("sent", 0), s("sent", 1), s("delivered", 10, None, 0)], None),
    (SENDER_A, [s("sent", 0), s("delivered", 20)], None),
    (SENDER_A, [s("sent", 0), s("delivered", 30)], None),
    (SENDER_A, [s("sent", 0), s("delivered", 40)], None),
    (SENDER_A, [s("sent", 0), s("delivered", 60)], None),
    (SENDER_A, [s("sent", 0)], 90),
    (SENDER_A, [s("sent", 0)], 120),
    (SENDER_B, [s("sent", 0), s("delivered", 3), s("read", 100)], None),
    (SENDER_B, [s("sent", 0), s("read", 50)], None),
    (SENDER_B, [s("sent", 0), s("undelivered", 30, 30003, 0), s("undelivered", 31, 30003, 0)],
     None),
    (SENDER_B, [s("sent", 0), s("undelivered", 45, 30003, 0)], None),
    (SENDER_B, [s("sent", 0), s("undelivered", 20, 30007)], None),
    (SENDER_A, [s("failed", 0, 30008)], None),
    (SENDER_A, [s("failed", 0)], None),
    (SENDER_A, [s("sent", 0)], None),
    (SENDER_A, [s("queued", 0), s("sent", 2)], None),
    (SENDER_A, [s("queued", 0)], None),
    (SENDER_B, [s("canceled", 0)], None),
    (SENDER_B, [s("partially_delivered", 0)], None),
]  # fmt: skip

EXPECTED_DAY8 = {
    "date": "2026-01-15",
    "timezone": "UTC",
    "total": 20,
    "counts": {
        "accepted": 0, "scheduled": 0, "queued": 1, "sending": 0, "sent": 2, "delivered": 8,
        "undelivered": 3, "failed": 2, "canceled": 1, "read": 2, "unknown": 1,
    },
    "settled": 15,
    "delivery_rate": 0.6667,
    "undelivered_rate": 0.2,
    "failed_rate": 0.1333,
    "no_receipt_rate": 0.1176,
    "avg_time_to_delivered_s": 52.5,
    "p50_time_to_delivered_s": 40.0,
    "p95_time_to_delivered_s": 120.0,
    "callback_latency_p50_s": 10.0,
    "callback_latency_p95_s": 45.0,
    "duplicate_rate": 0.0833,
    "callback_loss_rate": 0.125,
    "by_error_code": [
        {"code": 30003, "count": 2, "action": "retry"},
        {"code": 30007, "count": 1, "action": "alert"},
        {"code": 30008, "count": 1, "action": "retry"},
        {"code": None, "count": 1, "action": "none"},
    ],
    "by_sender": [
        {"sender": SENDER_A, "total": 13, "delivered": 8, "settled": 10, "delivery_rate": 0.8},
        {"sender": SENDER_B, "total": 7, "delivered": 2, "settled": 5, "delivery_rate": 0.4},
    ],
}  # fmt: skip

# Days 1-7: (settled, delivered) per day, and the 7 together.
EXPECTED_EARLIER = {date(2026, 1, 8) + timedelta(days=i): (5, 5 if i == 2 else 4) for i in range(7)}
BASELINE_SETTLED, BASELINE_DELIVERED = 35, 29


def callback(
    sid: str,
    status: str,
    at: datetime,
    sender: str,
    code: int | None = None,
    carrier_done: datetime | None = None,
) -> Callback:
    return Callback(
        stream_id=f"{1_700_000_000_000 + next(_stream)}-0",
        message_sid=sid,
        status=status,
        error_code=code,
        error_message=None,
        account_sid=ACCOUNT,
        to="+15005550006",
        from_=sender,
        messaging_service_sid=None,
        idempotency_token=None,
        received_at=at.timestamp(),
        carrier_done_at=carrier_done,
        raw=f"MessageSid={sid}&MessageStatus={status}",
    )


def store(engine: Engine, callbacks: list[Callback]) -> None:
    with Session(engine) as session, session.begin():
        store_batch(session, callbacks)


def reconcile_one(engine: Engine, fetched: Fetched, now: datetime) -> None:
    with Session(engine) as session, session.begin():
        apply_fetched(session, fetched, now)


def load_day8(engine: Engine) -> list[str]:
    """Day 8's 20 messages; returns their sids in the table's order."""
    start = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
    sids: list[str] = []
    first: list[Callback] = []
    later: list[Callback] = []
    lost: list[tuple[str, datetime]] = []
    for k, (sender, steps, reconciled_after) in enumerate(DAY8_MESSAGES):
        sid = new_sid()
        sids.append(sid)
        created = start + timedelta(minutes=k)
        seen: set[str] = set()
        for status, offset, code, done_minute in steps:
            done = None if done_minute is None else created + timedelta(minutes=done_minute)
            at = created + timedelta(seconds=offset)
            # Duplicates of messages 0 and 1 come in a later batch (found by the database),
            # message 10's in the same batch (found by collapse).
            duplicate = status in seen and k in (0, 1)
            seen.add(status)
            (later if duplicate else first).append(callback(sid, status, at, sender, code, done))
        if reconciled_after is not None:
            lost.append((sid, created + timedelta(seconds=reconciled_after)))
    store(engine, first)
    store(engine, later)
    for sid, updated in lost:
        fetched = Fetched(sid, "delivered", None, None, updated)
        reconcile_one(engine, fetched, updated + timedelta(hours=13))
    return sids


def load_days_1_to_7(engine: Engine) -> None:
    callbacks: list[Callback] = []
    for i, day in enumerate(sorted(EXPECTED_EARLIER)):
        start = datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)
        for k in range(5):
            sid = new_sid()
            created = start + timedelta(minutes=k)
            callbacks.append(callback(sid, "sent", created, SENDER_A))
            fails = k == 4 and i != 2
            final, code = ("undelivered", 30003) if fails else ("delivered", None)
            callbacks.append(callback(sid, final, created + timedelta(seconds=10), SENDER_A, code))
    store(engine, callbacks)


def load(engine: Engine) -> list[str]:
    """All 55 messages; returns day 8's sids."""
    load_days_1_to_7(engine)
    return load_day8(engine)


def load_counts(engine: Engine, days: dict[date, tuple[int, int]]) -> None:
    """For each day, `delivered` and `undelivered` (30003) messages from A, created at noon UTC."""
    callbacks: list[Callback] = []
    for day, (delivered, undelivered) in days.items():
        noon = datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)
        for k in range(delivered + undelivered):
            sid = new_sid()
            at = noon + timedelta(seconds=k)
            final, code = ("delivered", None) if k < delivered else ("undelivered", 30003)
            callbacks += [
                callback(sid, "sent", at, SENDER_A),
                callback(sid, final, at + timedelta(seconds=5), SENDER_A, code),
            ]
    store(engine, callbacks)
