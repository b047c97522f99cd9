"""The naive design statuspipe is measured against: one Celery task per callback, one
transaction each (what most Flask + Celery webhook tutorials build). Correct, just slow:
it keeps the same rules (rank guard, one audit row per status, duplicate count) in two
statements and one commit per callback.

Run by bench/drain.py as `celery -A bench.naive_reference worker --pool prefork -c 2`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import psycopg2
from celery import Celery
from sqlalchemy.engine import make_url

from shared.callback import parse_carrier_done
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
_conn: Any = None

# Lean on purpose: the reference should cost what the design costs (a task and a commit per
# callback), not what a slow ORM path would add on top.
_MESSAGE = """
INSERT INTO messages AS m (sid, account_sid, "to", "from", status, status_rank, error_code,
    created_at, status_updated_at, callback_received_at, carrier_done_at, needs_reconcile)
VALUES (%(sid)s, %(account)s, %(to)s, %(from)s, %(status)s, %(rank)s, %(code)s, %(at)s, %(at)s,
    %(at)s, %(done)s, false)
ON CONFLICT (sid) DO UPDATE SET
    status = CASE WHEN excluded.status_rank > m.status_rank THEN excluded.status ELSE m.status END,
    error_code = CASE WHEN excluded.status_rank > m.status_rank
        THEN excluded.error_code ELSE m.error_code END,
    status_updated_at = CASE WHEN excluded.status_rank > m.status_rank
        THEN excluded.status_updated_at ELSE m.status_updated_at END,
    status_rank = GREATEST(m.status_rank, excluded.status_rank),
    callback_received_at = GREATEST(m.callback_received_at, excluded.callback_received_at)
"""
_EVENT = """
INSERT INTO message_events AS e (message_sid, status, error_code, idempotency_token, received_at,
    duplicate_count, raw)
VALUES (%(sid)s, %(status)s, %(code)s, %(token)s, %(at)s, 0, %(raw)s)
ON CONFLICT (message_sid, status) DO UPDATE SET duplicate_count = e.duplicate_count + 1
"""


def _connection() -> Any:
    global _conn
    if _conn is None or _conn.closed:
        url = make_url(os.environ["DATABASE_URL"])
        _conn = psycopg2.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password,
            dbname=url.database,
        )  # fmt: skip
    return _conn


@app.task(name="naive.store_one")
def store_one(fields: dict[str, str], token: str, received: float) -> None:
    status = fields["MessageStatus"]
    params = {
        "sid": fields["MessageSid"], "account": fields.get("AccountSid"), "to": fields.get("To"),
        "from": fields.get("From"), "status": status, "rank": rank(status),
        "code": int(fields["ErrorCode"]) if fields.get("ErrorCode") else None,
        "at": datetime.fromtimestamp(received, UTC), "token": token,
        "done": parse_carrier_done(fields.get("RawDlrDoneDate")),
        "raw": urlencode(fields),
    }  # fmt: skip
    conn = _connection()
    with conn, conn.cursor() as cur:  # one transaction per callback
        cur.execute(_MESSAGE, params)
        cur.execute(_EVENT, params)
