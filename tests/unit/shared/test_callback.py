from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from shared import stream
from shared.callback import (
    MalformedCallback,
    from_entry,
    missing_field_reason,
    parse_carrier_done,
    parse_form,
)
from tests.twilio_fixtures import callback_fields

SID = "SM" + "ab" * 16


def entry(fields, **extra):
    e = {stream.F_BODY: urlencode(fields).encode(), stream.F_RECEIVED: b"1768487520.5"}
    e.update({k.encode(): v for k, v in extra.items()})
    return e


def test_parses_every_field_of_an_undelivered_callback():
    fields = callback_fields(SID, "undelivered", ErrorCode="30003", RawDlrDoneDate="2601151433")
    cb = from_entry("1-0", entry(fields, **{"t": b"tok-1"}))
    assert cb.message_sid == SID
    assert cb.status == "undelivered"
    assert cb.error_code == 30003
    assert cb.to == "+15005550006"
    assert cb.from_ == "+15005550001"
    assert cb.carrier_done_at == datetime(2026, 1, 15, 14, 33, tzinfo=UTC)
    assert cb.received_at == 1768487520.5
    assert cb.raw == urlencode(fields)  # the form itself, as sent


def test_keeps_fields_twilio_adds_later():
    fields = callback_fields(SID, "read", EventType="READ", SomethingNew="x")
    cb = from_entry("1-0", entry(fields))
    assert parse_form(cb.raw)["SomethingNew"] == "x"


def test_get_callbacks_take_fields_from_the_query_string():
    e = {
        stream.F_BODY: b"",
        stream.F_QUERY: urlencode(callback_fields(SID, "sent")).encode(),
        stream.F_METHOD: b"GET",
        stream.F_RECEIVED: b"1.0",
    }
    cb = from_entry("1-0", e)
    assert cb.status == "sent"
    assert (cb.raw, cb.url_query) == (e[stream.F_QUERY].decode(), None)


def test_own_query_identifiers_are_kept_beside_the_form():
    e = entry(callback_fields(SID, "sent"), **{"q": b"tenant=42"})
    assert from_entry("1-0", e).url_query == "tenant=42"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: f.pop("MessageSid"), "MessageSid is missing"),
        (lambda f: f.pop("MessageStatus"), "MessageStatus is missing"),
        (lambda f: f.update(MessageSid="SM123"), "MessageSid must be"),
        (lambda f: f.update(MessageSid="XX" + "a" * 32), "MessageSid must be"),
        (lambda f: f.update(MessageSid="SM" + "g" * 32), "MessageSid must be"),
        (lambda f: f.update(MessageSid="SM" + "a" * 32 + "\n"), "MessageSid must be"),
        (lambda f: f.update(MessageStatus="x" * 33), "MessageStatus must be"),
    ],
)
def test_malformed_fields(mutate, reason):
    fields = callback_fields(SID, "sent")
    mutate(fields)
    assert reason in missing_field_reason(fields)
    with pytest.raises(MalformedCallback, match=reason):
        from_entry("1-0", entry(fields))


def test_mms_sids_are_valid():
    assert missing_field_reason(callback_fields("MM" + "0" * 32, "delivered")) is None


def test_an_entry_without_receive_time_is_malformed():
    with pytest.raises(MalformedCallback, match="lacks field"):
        from_entry("1-0", {stream.F_BODY: b"MessageSid=x"})


@pytest.mark.parametrize("stamp", [b"nan", b"inf", b"-inf", b"yesterday"])
def test_a_receive_time_that_is_not_a_time_is_malformed(stamp):
    e = entry(callback_fields(SID, "sent"))
    e[stream.F_RECEIVED] = stamp
    with pytest.raises(MalformedCallback, match="not decodable"):
        from_entry("1-0", e)


def test_non_utf8_body_is_malformed():
    with pytest.raises(MalformedCallback, match="not decodable"):
        from_entry("1-0", {stream.F_BODY: b"MessageSid=\xff", stream.F_RECEIVED: b"1"})


def test_non_numeric_error_code_is_kept_raw_not_parsed():
    cb = from_entry("1-0", entry(callback_fields(SID, "failed", ErrorCode="abc")))
    assert cb.error_code is None
    assert parse_form(cb.raw)["ErrorCode"] == "abc"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2303072155", datetime(2023, 3, 7, 21, 55, tzinfo=UTC)),
        ("2601151432", datetime(2026, 1, 15, 14, 32, tzinfo=UTC)),
        (None, None),
        ("", None),
        ("26011514", None),
        ("notadate!!", None),
        ("2613011200", None),  # month 13
        ("2602300000", None),  # February 30th
        ("9912312359", datetime(1999, 12, 31, 23, 59, tzinfo=UTC)),  # strptime's %y pivot
        ("6801010000", datetime(2068, 1, 1, 0, 0, tzinfo=UTC)),
        ("\u0662\u0663\u0660\u0663\u0660\u0667\u0662\u0661\u0665\u0665", None),  # non-ASCII digits
    ],
)
def test_carrier_done_date(raw, expected):
    assert parse_carrier_done(raw) == expected


@pytest.mark.parametrize(
    "body",
    [
        "",
        "a=1&b=2",
        "a=1&a=2&a=3",
        "To=%2B15551234567&Body=hello+world",
        "flag&empty=&=novalue&&x==y",
        "ErrorMessage=Unknown%20error%3A%20%C3%A9t%C3%A9",
        "bad=%ZZ&trunc=%E2%82",
        "k%2Bey=v%26alue&plus+key=a+b",
        "To=%2B1555%2B%2b2&From=+%2B1&x=%2B%20",  # the %2B-only fast path and its neighbours
        "a=%2B%&b=%%2B&c=%2",
    ],
)
def test_parse_form_matches_urllib(body):
    from urllib.parse import parse_qsl

    expected: dict = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        expected.setdefault(key, []).append(value)
    got = {k: v if isinstance(v, list) else [v] for k, v in parse_form(body).items()}
    assert got == expected
