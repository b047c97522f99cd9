from __future__ import annotations

import pytest

from shared.send_request import (
    InvalidSendRequest,
    SendRequest,
    outbound_id_from_query,
    parse_send_request,
    status_callback_url,
)

SERVICE = "MG" + "a" * 32


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"to": "+15005550006", "body": "hi", "from": "+15005550001"},
            SendRequest("+15005550006", "hi", "+15005550001", None),
        ),
        (
            {"to": "+15005550006", "body": "hi", "messaging_service_sid": SERVICE},
            SendRequest("+15005550006", "hi", None, SERVICE),
        ),
        (
            {"to": "whatsapp:+15005550006", "media_url": ["https://x.test/a.png"],
             "from": "whatsapp:+15005550001", "force": True},
            SendRequest("whatsapp:+15005550006", None, "whatsapp:+15005550001", None,
                        ("https://x.test/a.png",), True),
        ),
        (
            {"to": "+15005550006", "body": " spaced ", "from": "+15005550001"},
            SendRequest("+15005550006", " spaced ", "+15005550001", None),
        ),
    ],
)  # fmt: skip
def test_valid_requests(doc, expected):
    assert parse_send_request(doc) == expected


@pytest.mark.parametrize(
    ("doc", "field", "words"),
    [
        ([], None, "JSON object"),
        ({"to": "+15005550006", "body": "x", "from": "+1500", "extra": 1}, "extra", "unknown"),
        ({"body": "x", "from": "+15005550001"}, "to", "required"),
        ({"to": "5005550006", "body": "x", "from": "+15005550001"}, "to", "E.164"),
        ({"to": "+05005550006", "body": "x", "from": "+15005550001"}, "to", "E.164"),
        ({"to": "+1234567890123456", "body": "x", "from": "+15005550001"}, "to", "E.164"),
        ({"to": "+15005550006\n", "body": "x", "from": "+15005550001"}, "to", "E.164"),
        ({"to": " +15005550006", "body": "x", "from": "+15005550001"}, "to", "E.164"),
        ({"to": 15005550006, "body": "x", "from": "+15005550001"}, "to", "string"),
        ({"to": "+15005550006", "body": "x"}, "from", "exactly one"),
        ({"to": "+15005550006", "body": "x", "from": "+15005550001",
          "messaging_service_sid": SERVICE}, "from", "exactly one"),
        ({"to": "+15005550006", "body": "x", "messaging_service_sid": "MG1"},
         "messaging_service_sid", "MG"),
        ({"to": "+15005550006", "body": "", "from": "+15005550001"}, "body", "empty"),
        ({"to": "+15005550006", "from": "+15005550001"}, "body", "empty"),
        ({"to": "+15005550006", "body": "x" * 1601, "from": "+15005550001"}, "body", "1600"),
        ({"to": "+15005550006", "media_url": ["ftp://x"], "from": "+15005550001"},
         "media_url", "http"),
        ({"to": "+15005550006", "media_url": [1], "from": "+15005550001"}, "media_url", "list"),
        ({"to": "+15005550006", "media_url": ["https://x.test/"] * 11, "from": "+15005550001"},
         "media_url", "10"),
        ({"to": "+15005550006", "body": "x", "from": "+15005550001", "force": "yes"},
         "force", "true or false"),
    ],
)  # fmt: skip
def test_invalid_requests_name_the_field(doc, field, words):
    with pytest.raises(InvalidSendRequest) as err:
        parse_send_request(doc)
    assert err.value.field == field
    assert words in err.value.message


@pytest.mark.parametrize(
    ("public", "overrides", "url"),
    [
        ("https://h.test", "rc=3&rp=ct", "https://h.test/twilio/status?statuspipe_id=7#rc=3&rp=ct"),
        ("https://h.test/", "", "https://h.test/twilio/status?statuspipe_id=7"),
    ],
)
def test_status_callback_url(public, overrides, url):
    assert status_callback_url(public, 7, overrides) == url


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("statuspipe_id=42", 42),
        ("tenant=a&statuspipe_id=42", 42),
        ("statuspipe_id=x", None),
        ("other=1", None),
        ("", None),
        (None, None),
    ],
)
def test_outbound_id_from_query(query, expected):
    assert outbound_id_from_query(query) == expected
