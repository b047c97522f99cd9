"""The naive design statuspipe is measured against: one Celery task per callback, one
transaction each (what most Flask + Celery webhook tutorials build). Correct, just slow:
it keeps the same rules (rank guard, one audit row per status, duplicate count).

Run by bench/drain.py as `celery -A bench.naive_reference worker --pool prefork -c 2`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from celery import Celery
from sqlalchemy import create_engine, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.callback import parse_carrier_done
from shared.models import Message, MessageEvent
from shared.statuses import rank

QUEUE = "naive"


def make_app(broker: str) -> Celery:
    app = Celery("naive", broker=broker)
    app.conf.update(
        task_default_queue=QUEUE,
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=4,
        broker_connection_retry_on_startup=True,
    )
    return app


app = make_app(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"))
_engine = None


def _session() -> Session:
    global _engine
    if _engine is None:
        _engine = create_engine(
            os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://")
        )
    return Session(_engine)


@app.task(name="naive.store_one")
def store_one(fields: dict[str, str], token: str, received: float) -> None:
    sid, status = fields["MessageSid"], fields["MessageStatus"]
    code = int(fields["ErrorCode"]) if fields.get("ErrorCode") else None
    at = datetime.fromtimestamp(received, UTC)
    with _session() as session, session.begin():
        message = session.scalar(select(Message).where(Message.sid == sid).with_for_update())
        if message is None:
            session.execute(
                insert(Message.__table__).values(
                    sid=sid, account_sid=fields.get("AccountSid"), to=fields.get("To"),
                    **{"from": fields.get("From")}, status=status, status_rank=rank(status),
                    error_code=code, created_at=at, status_updated_at=at, callback_received_at=at,
                    carrier_done_at=parse_carrier_done(fields.get("RawDlrDoneDate")),
                ).on_conflict_do_nothing()
            )  # fmt: skip
            message = session.scalar(select(Message).where(Message.sid == sid).with_for_update())
        elif rank(status) > message.status_rank:
            message.status, message.status_rank, message.error_code = status, rank(status), code
            message.status_updated_at = at
        message.callback_received_at = at
        stmt = insert(MessageEvent.__table__).values(
            message_sid=sid, status=status, error_code=code, idempotency_token=token,
            received_at=at, duplicate_count=0, raw=fields,
        )  # fmt: skip
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["message_sid", "status"],
                set_={"duplicate_count": MessageEvent.__table__.c.duplicate_count + 1},
            )
        )
