"""A worker taking over entries that a slow but live worker is still storing must not store them
a second time: on PostgreSQL the receipt spans' exclusion constraint makes it wait for that
commit, then skip them."""

import threading
import time

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from shared.models import MessageEvent
from tests.twilio_fixtures import new_sid
from tests.twilio_fixtures import stored_callback as cb
from workers.store import store_batch


def waiting_on_a_lock(db, pid: int) -> bool:
    with db.connect() as conn:
        return bool(
            conn.scalar(
                text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :p"),
                {"p": pid},
            )
        )


def test_takeover_waits_for_the_slow_worker_then_skips_its_entries(db):
    sid = new_sid()
    batch = [cb(sid, "sent", "400-0"), cb(sid, "delivered", "400-1")]
    slow = Session(db)
    slow.begin()
    store_batch(slow, batch, spans=[("400-0", "400-1")])  # stored, not yet committed

    outcome = {}
    taker_pid = {}

    def take_over() -> None:
        with Session(db) as session, session.begin():
            taker_pid["pid"] = session.scalar(text("SELECT pg_backend_pid()"))
            outcome["result"] = store_batch(session, [batch[1]])  # XAUTOCLAIMed alone

    taker = threading.Thread(target=take_over)
    taker.start()
    deadline = time.monotonic() + 10
    while not ("pid" in taker_pid and waiting_on_a_lock(db, taker_pid["pid"])):
        assert time.monotonic() < deadline, "the takeover never waited on the slow worker"
        assert "result" not in outcome, "the takeover stored without waiting"
        time.sleep(0.02)
    slow.commit()
    slow.close()
    taker.join(10)
    assert (outcome["result"].stored, outcome["result"].redelivered) == (0, 1)
    with Session(db) as session:
        rows = session.scalars(select(MessageEvent).where(MessageEvent.message_sid == sid)).all()
    assert {e.status: e.duplicate_count for e in rows} == {"sent": 0, "delivered": 0}
