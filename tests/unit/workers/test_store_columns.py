"""Both ways of storing a batch write the same columns, each a real column of its table: the
PostgreSQL staging tables and INSERT ... SELECT (COPY) and the portable upserts (SQLite) all follow
the one column list per table in workers/store/rows.py."""

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import literal
from sqlalchemy.dialects import postgresql

from shared.models import Message, MessageEvent
from tests.twilio_fixtures import new_sid, stored_callback
from workers.store import portable, postgres
from workers.store.rows import EVENT_COLUMNS, MESSAGE_COLUMNS, EventRow, MessageRow

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
# Written by the statements themselves (the time this batch flagged the message), not by a row.
COMPUTED = {"messages": ["reconcile_flagged_at"], "message_events": []}
TABLES = {
    "messages": (Message.__table__, MESSAGE_COLUMNS, postgres._CREATE_STAGE_MESSAGES,
                 postgres._MESSAGES),
    "message_events": (MessageEvent.__table__, EVENT_COLUMNS, postgres._CREATE_STAGE_EVENTS,
                       postgres._EVENTS),
}  # fmt: skip


def _unquoted(names: str) -> list[str]:
    return [name.strip().strip('"') for name in names.split(",")]


def _staging_columns(ddl: str) -> list[str]:
    spec = re.search(r"CREATE TEMP TABLE IF NOT EXISTS \w+ \((.*)\) ON COMMIT", ddl).group(1)
    return [column.split()[0].strip('"') for column in spec.split(", ")]


def _postgres_insert_columns(sql: str, table: str) -> list[str]:
    return _unquoted(re.search(rf"INSERT INTO {table} AS \w+ \(([^)]*)\)", sql).group(1))


def _postgres_select_width(sql: str) -> int:
    select = re.search(r"^SELECT (.*)$", sql, re.MULTILINE).group(1)
    return len(select.split(", "))


def _postgres_updated_columns(sql: str) -> set[str]:
    rules = sql.split("DO UPDATE SET", 1)[1].split("RETURNING", 1)[0]
    return {name.strip('"') for name in re.findall(r'^    ("?\w+"?) = ', rules, re.MULTILINE)}


def _rows() -> dict[str, list[dict]]:
    """The dicts the portable upserts send, for a row of each shape."""
    cb = stored_callback(new_sid(), "delivered", "1-0")
    unknown = stored_callback(new_sid(), "some-future-status", "2-0")
    messages = [MessageRow(cb, cb, 1.0, 2.0), MessageRow(None, unknown, 1.0, 2.0)]
    return {
        "messages": portable._message_params(messages, NOW),
        "message_events": [EventRow(cb, 0).values(), EventRow(unknown, 2).values()],
    }


def _portable_updated_columns(table: str) -> set[str]:
    model = TABLES[table][0]
    stmt = postgresql.insert(model)
    if table == "messages":
        return set(portable._message_updates("postgresql", stmt, literal(NOW)))
    return set(portable._event_updates("postgresql", stmt))


@pytest.mark.parametrize("table", TABLES)
def test_every_column_of_the_list_is_a_column_of_the_table(table):
    model, columns, _, _ = TABLES[table]
    names = [c.name for c in columns]
    assert len(set(names)) == len(names)
    assert [name for name in names + COMPUTED[table] if name not in model.c] == []


@pytest.mark.parametrize("table", TABLES)
def test_the_staging_table_follows_the_column_list(table):
    _, columns, ddl, _ = TABLES[table]
    assert _staging_columns(ddl) == [c.staged for c in columns]


@pytest.mark.parametrize("table", TABLES)
def test_postgres_inserts_every_listed_column_from_the_staging_table(table):
    _, columns, _, sql = TABLES[table]
    inserted = _postgres_insert_columns(sql, table)
    assert inserted == [c.name for c in columns] + COMPUTED[table]
    assert _postgres_select_width(sql) == len(inserted)


@pytest.mark.parametrize("table", TABLES)
def test_the_portable_upsert_writes_the_same_columns_as_postgres(table):
    _, _, _, sql = TABLES[table]
    for row in _rows()[table]:
        assert list(row) == _postgres_insert_columns(sql, table)


@pytest.mark.parametrize("table", TABLES)
def test_both_backends_update_the_same_columns_on_conflict(table):
    _, _, _, sql = TABLES[table]
    updated = _postgres_updated_columns(sql)
    assert updated, "the pattern no longer finds the SET clause"
    assert updated == _portable_updated_columns(table)


def test_a_copy_line_has_one_field_per_staging_column():
    cb = stored_callback(new_sid(), "delivered", "1-0")
    unknown = stored_callback(new_sid(), "some-future-status", "2-0")
    for row in (MessageRow(cb, cb, 1.0, 2.0), MessageRow(None, unknown, 1.0, 2.0)):
        assert postgres._message_line(row).count("\t") == len(MESSAGE_COLUMNS) - 1
    assert postgres._event_line(EventRow(cb, 0)).count("\t") == len(EVENT_COLUMNS) - 1
