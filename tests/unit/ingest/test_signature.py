import pytest
from twilio.request_validator import RequestValidator

from ingest.signature import SignatureChecker, raw_path_and_query

# From twilio-python's own tests.
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}


def test_twilio_published_vector():
    checker = SignatureChecker("https://mycompany.com", ["12345"])
    assert checker.is_valid(VECTOR_URL, VECTOR_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_reference_sample_callback_vector():
    fields = {
        "AccountSid": "AC00000000000000000000000000000001",
        "ApiVersion": "2010-04-01",
        "From": "+15005550001",
        "MessageSid": "SM00000000000000000000000000000001",
        "MessageStatus": "delivered",
        "MessagingServiceSid": "MG00000000000000000000000000000001",
        "RawDlrDoneDate": "2601151432",
        "SmsSid": "SM00000000000000000000000000000001",
        "SmsStatus": "delivered",
        "To": "+15005550006",
    }
    checker = SignatureChecker("https://hooks.example.com", ["test_auth_token_0123456789abcdef"])
    url = "https://hooks.example.com/twilio/status?tenant=42"
    assert checker.is_valid(url, fields, "6dfhntVZoVYNfdr9sRSSeEjtY0k=")


@pytest.mark.parametrize(
    "signature",
    ["", "RSOYDt4T1cUTdK1PDd93/VVr8B8", "rsoydt4t1cutdk1pdd93/vvr8b8=", "ünïcödé", "x" * 500],
)
def test_wrong_signatures_are_refused_without_raising(signature):
    checker = SignatureChecker("https://mycompany.com", ["12345"])
    assert not checker.is_valid(VECTOR_URL, VECTOR_PARAMS, signature)


def test_either_token_is_accepted_while_rotating():
    checker = SignatureChecker("https://mycompany.com", ["old", "new"])
    for token in ("old", "new"):
        sig = RequestValidator(token).compute_signature(VECTOR_URL, VECTOR_PARAMS)
        assert checker.is_valid(VECTOR_URL, VECTOR_PARAMS, sig)
    other = RequestValidator("other").compute_signature(VECTOR_URL, VECTOR_PARAMS)
    assert not checker.is_valid(VECTOR_URL, VECTOR_PARAMS, other)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"RAW_URI": "/twilio/status?b=2&a=1"}, "/twilio/status?b=2&a=1"),
        ({"REQUEST_URI": "/twilio/status?x=%20y"}, "/twilio/status?x=%20y"),
        ({"RAW_URI": "http://proxy.local/twilio/status?a=1"}, "/twilio/status?a=1"),
        ({"PATH_INFO": "/twilio/status", "QUERY_STRING": "a=1"}, "/twilio/status?a=1"),
        ({"PATH_INFO": "/twilio/status", "QUERY_STRING": ""}, "/twilio/status"),
    ],
)
def test_raw_path_keeps_the_query_exactly(environ, expected):
    assert raw_path_and_query(environ) == expected
