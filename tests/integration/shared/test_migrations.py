"""Upgrading a database that already holds data keeps its meaning (PostgreSQL and SQLite)."""

import json

import pytest
from sqlalchemy import create_engine, text

from shared.migrate import upgrade
from shared.statuses import STATUS_RANKS, Ranks

SID_A = "SM" + "a" * 32
SID_B = "SM" + "b" * 32
SID_C = "SM" + "c" * 32


def insert_old_event(conn, sid: str, status: str, at: str, raw_json: str) -> None:
    """An audit row as revisions before 0003 stored it (raw as JSON)."""
    conn.execute(
        text(
            "INSERT INTO message_events (message_sid, status, received_at, duplicate_count, raw)"
            " VALUES (:sid, :status, :at, 0, :raw)"
        ),
        {"sid": sid, "status": status, "at": at, "raw": raw_json},
    )


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_url(request, tmp_path, pg_url):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgrade.db'}"
        return
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "statuspipe_upgrade_test" WITH (FORCE)'))
        conn.execute(text('CREATE DATABASE "statuspipe_upgrade_test"'))
    url = admin.url.set(database="statuspipe_upgrade_test").render_as_string(False)
    yield url
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "statuspipe_upgrade_test" WITH (FORCE)'))
    admin.dispose()


def test_0002_backfills_the_first_final_status(empty_url):
    upgrade(empty_url, "0001")
    engine = create_engine(empty_url)
    with engine.begin() as conn:
        for sid, status, rank, flagged in [
            (SID_A, "read", 5, False),
            (SID_B, "delivered", 4, True),
            (SID_C, "sent", 3, False),
        ]:
            conn.execute(
                text(
                    "INSERT INTO messages (sid, status, status_rank, created_at, "
                    "callback_received_at, needs_reconcile) "
                    "VALUES (:sid, :status, :rank, '2026-01-01', '2026-01-01', :flagged)"
                ),
                {"sid": sid, "status": status, "rank": rank, "flagged": flagged},
            )
        for sid, status, at in [
            (SID_A, "sent", "2026-01-01 00:00:01"),
            (SID_A, "undelivered", "2026-01-01 00:00:02"),
            (SID_A, "read", "2026-01-01 00:00:03"),
            (SID_B, "delivered", "2026-01-01 00:00:01"),
            (SID_B, "failed", "2026-01-01 00:00:02"),
            (SID_C, "sent", "2026-01-01 00:00:01"),
        ]:
            insert_old_event(conn, sid, status, at, "{}")
    upgrade(empty_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT sid, final_status, reconcile_flagged_at IS NOT NULL FROM messages")
        ).all()
    engine.dispose()
    assert sorted(rows) == [
        (SID_A, "undelivered", False),
        (SID_B, "delivered", True),
        (SID_C, None, False),
    ]


def test_0002_knows_every_final_status():
    from importlib import import_module

    migration = import_module("shared.migrations.versions.0002_final_status")
    finals = {s for s, r in STATUS_RANKS.items() if r == Ranks.FINAL}
    assert "(" + ", ".join(f"'{s}'" for s in sorted(finals)) + ")" == migration.FINALS


def test_0003_turns_json_audit_rows_into_the_form_text(empty_url):
    from urllib.parse import parse_qs

    upgrade(empty_url, "0002")
    engine = create_engine(empty_url)
    docs = {
        "sent": json.dumps(
            {
                "method": "POST",
                "fields": {
                    "MessageSid": SID_A,
                    "MessageStatus": "sent",
                    "To": "+15005550006",
                    "Note": "a&b=c d",
                },
            }
        ),
        "delivered": '{"method": "POST", "fields": {"MessageStatus": "delivered", '
        '"Tag": ["x", "y"]}, "query": "tenant=42"}',
    }
    with engine.begin() as conn:
        for status, doc in docs.items():
            insert_old_event(conn, SID_A, status, "2026-01-01", doc)
    upgrade(empty_url)
    with engine.connect() as conn:
        rows = dict(
            (status, (raw, query))
            for status, raw, query in conn.execute(
                text("SELECT status, raw, url_query FROM message_events")
            )
        )
    engine.dispose()
    sent_form, sent_query = rows["sent"]
    assert parse_qs(sent_form) == {
        "MessageSid": [SID_A],
        "MessageStatus": ["sent"],
        "To": ["+15005550006"],
        "Note": ["a&b=c d"],
    }
    assert sent_query is None
    delivered_form, delivered_query = rows["delivered"]
    assert parse_qs(delivered_form) == {"MessageStatus": ["delivered"], "Tag": ["x", "y"]}
    assert delivered_query == "tenant=42"


def test_0004_keeps_old_receipts_as_one_entry_spans(empty_url):
    from sqlalchemy.orm import Session

    from tests.twilio_fixtures import stored_callback as cb
    from workers.store import store_batch

    upgrade(empty_url, "0003")
    engine = create_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO callback_receipts (stream_id) VALUES ('1764384467664-0'), ('7-12')")
        )
    upgrade(empty_url)
    with engine.connect() as conn:
        spans = conn.execute(
            text("SELECT first_ms, first_seq, last_ms, last_seq FROM callback_receipts")
        ).all()
    assert sorted(spans) == [(7, 12, 7, 12), (1764384467664, 0, 1764384467664, 0)]
    with Session(engine) as session, session.begin():
        result = store_batch(session, [cb(SID_A, "sent", "7-12"), cb(SID_A, "read", "7-13")])
    engine.dispose()
    assert (result.stored, result.redelivered) == (1, 1)


def test_0005_keys_the_audit_trail_by_message_and_status_and_back(empty_url):
    from sqlalchemy import inspect

    from shared.migrate import alembic_config

    upgrade(empty_url, "0004")
    engine = create_engine(empty_url)
    with engine.begin() as conn:
        insert_old_event(conn, SID_A, "sent", "2026-01-01", "MessageStatus=sent")
        insert_old_event(conn, SID_A, "delivered", "2026-01-02", "MessageStatus=delivered")
    upgrade(empty_url)
    schema = inspect(engine)
    assert schema.get_pk_constraint("message_events")["constrained_columns"] == [
        "message_sid",
        "status",
    ]
    assert "id" not in {c["name"] for c in schema.get_columns("message_events")}
    assert schema.get_indexes("message_events") == []
    select_rows = text("SELECT message_sid, status, raw FROM message_events ORDER BY status")
    with engine.connect() as conn:
        assert conn.execute(select_rows).all() == [
            (SID_A, "delivered", "MessageStatus=delivered"),
            (SID_A, "sent", "MessageStatus=sent"),
        ]

    from alembic import command

    command.downgrade(alembic_config(empty_url), "0004")
    with engine.begin() as conn:
        assert conn.execute(select_rows).all() == [
            (SID_A, "delivered", "MessageStatus=delivered"),
            (SID_A, "sent", "MessageStatus=sent"),
        ]
        ids = conn.execute(text("SELECT id FROM message_events ORDER BY id")).scalars().all()
        assert len(set(ids)) == 2
        insert_old_event(conn, SID_B, "sent", "2026-01-03", "MessageStatus=sent")
    engine.dispose()
