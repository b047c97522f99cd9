"""The change feed's events as the web side renders them: the same bytes as json.dumps of the
change's document, whatever the change holds, and an unreadable entry skipped, not fatal."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.live.items import event_text, items_of
from shared.changes import FIELD, Change, Position, encode

SID = "SM" + "0123456789abcdef" * 2
AT = 1_800_000_000.123


def reference(position: Position, change: Change) -> bytes:
    data = json.dumps(change.document(), separators=(",", ":"))
    return f"id: {position}\ndata: {data}\n\n".encode()


@pytest.mark.parametrize(
    "change",
    [
        Change(SID, "delivered", None, None, "+15551234567", "+15557654321", AT),
        Change(SID, "sent", None, None, None, None, AT),
        Change(
            SID,
            "undelivered",
            30003,
            "Unreachable destination handset",
            "+4915112345678",
            "MG" + "f" * 32,
            AT,
        ),
        Change(SID, "failed", 30007, 'Carrier said "no" \\ again\n', "+1555", None, 0.0),
        Change(SID, "read", None, None, "whatsapp:+15551234567", None, AT),
        Change(SID, "failed", 21610, "Émoji 🚫 and ü, non-ASCII", "+33612345678", None, AT),
        Change(SID, "delivered", None, "\x00\x1f control \u2028", "+1", "+2", 1e9),
    ],
)
def test_the_event_is_the_documents_json(change):
    position = Position("1800000000123-4", 7)
    assert event_text(position, change) == reference(position, change)


optional_text = st.none() | st.text()


@given(
    status=st.sampled_from(["queued", "sent", "delivered", "undelivered", "failed", "read"]),
    code=st.none() | st.integers(0, 10**9),
    message=optional_text,
    to=optional_text,
    from_=optional_text,
    at=st.floats(0, 4_000_000_000),
)
def test_any_change_renders_as_json_dumps_would(status, code, message, to, from_, at):
    change = Change(SID, status, code, message, to, from_, at)
    position = Position("5-0", 0)
    assert event_text(position, change) == reference(position, change)


def test_an_entry_becomes_one_item_per_change_in_order():
    changes = [
        (SID, "sent", None, None, "+1", None, AT),
        (SID, "delivered", None, None, "+1", None, AT),
    ]
    items = items_of(b"9-2", {FIELD.encode(): encode(changes).encode()})
    assert [str(i.position) for i in items] == ["9-2.0", "9-2.1"]
    assert [i.change.status for i in items] == ["sent", "delivered"]


@pytest.mark.parametrize(
    "fields",
    [
        {},  # no payload field
        {FIELD.encode(): b"not json"},
        {FIELD.encode(): b'[["SM1","sent"]]'},  # too few fields
        {FIELD.encode(): b'[["SM1","sent","x",null,null,null,1.0]]'},  # an error code not a number
        {FIELD.encode(): b'[["SM1","sent",null,null,null,null,"noon"]]'},  # a time not a number
    ],
)
def test_an_unreadable_entry_yields_nothing_and_is_logged(fields, caplog):
    assert items_of(b"9-3", fields) == []
    assert "unreadable change-feed entry 9-3" in caplog.text
