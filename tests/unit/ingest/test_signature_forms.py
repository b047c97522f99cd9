"""The URL forms Twilio's own validators accept (port or no port) and the raw UTF-8 path.

The vectors were computed once with twilio-python's RequestValidator.compute_signature and are
written out here, so a change in how statuspipe builds the signed string cannot go unnoticed."""

import pytest
from twilio.request_validator import RequestValidator

from ingest.callback_request import CallbackRequest, FormValues
from ingest.signature import SignatureChecker, raw_path_and_query, url_forms

TOKEN = "vector_token_0123456789"
FIELDS = {"MessageSid": "SM" + "ab" * 16, "MessageStatus": "delivered", "To": "+15005550006"}
# RequestValidator(TOKEN).compute_signature(url, FIELDS) for each url:
SIG_NO_PORT = "Rdjg3Ed2HAk/V6z5M1QzSwVsRH4="  # https://hooks.example.com/twilio/status
SIG_443 = "DUxsdKiqVy5EWcqAT4LkLXQBZS0="  # https://hooks.example.com:443/twilio/status
SIG_8443 = "WAAI5bR+uN0DI/1ZG84SxgDgsPQ="  # https://hooks.example.com:8443/twilio/status
SIG_HTTP_80 = "X8g3S93yv9raEk+8O9POHYWWU3s="  # http://hooks.example.com:80/twilio/status
# https://hooks.example.com/twilio/status?tenant=café&x=%C3%A9 (é sent as raw UTF-8 bytes)
SIG_UTF8 = "6Qz+V35SWJC9qgAMi/9aHlkhAtg="


def request(raw_uri: str, signature: str) -> CallbackRequest:
    environ = {"RAW_URI": raw_uri, "HTTP_X_TWILIO_SIGNATURE": signature}
    return CallbackRequest(environ, "POST", b"", b"", FormValues(FIELDS))


def test_the_vectors_are_what_twilio_computes():
    v = RequestValidator(TOKEN)
    assert v.compute_signature("https://hooks.example.com/twilio/status", FIELDS) == SIG_NO_PORT
    assert v.compute_signature("https://hooks.example.com:443/twilio/status", FIELDS) == SIG_443


@pytest.mark.parametrize(
    ("public_url", "signature"),
    [
        # Twilio signed without the port, PUBLIC_URL has it, and the other way round.
        ("https://hooks.example.com", SIG_NO_PORT),
        ("https://hooks.example.com", SIG_443),
        ("https://hooks.example.com:443", SIG_NO_PORT),
        ("https://hooks.example.com:443", SIG_443),
        # A non-default port: with it, or without it.
        ("https://hooks.example.com:8443", SIG_8443),
        ("https://hooks.example.com:8443", SIG_NO_PORT),
        # http and its default port.
        ("http://hooks.example.com:80", SIG_HTTP_80),
        # Credentials in PUBLIC_URL are not part of what Twilio signs.
        ("https://user:pass@hooks.example.com", SIG_NO_PORT),
        ("https://user:pass@hooks.example.com:8443", SIG_8443),
    ],
)
def test_a_signature_with_or_without_the_port_is_accepted(public_url, signature):
    checker = SignatureChecker(public_url, [TOKEN])
    assert checker.verify(request("/twilio/status", signature)) is None


@pytest.mark.parametrize(
    ("public_url", "signature"),
    [
        ("https://hooks.example.com", SIG_8443),  # a port nobody configured
        ("https://hooks.example.com:8443", SIG_443),  # another port than the configured one
        ("http://hooks.example.com", SIG_NO_PORT),  # another scheme
        ("https://other.example.com", SIG_NO_PORT),  # another host
    ],
)
def test_other_urls_are_still_refused(public_url, signature):
    problem = SignatureChecker(public_url, [TOKEN]).verify(request("/twilio/status", signature))
    assert problem is not None
    assert problem.startswith("a wrong signature for ")


@pytest.mark.parametrize(
    ("public_url", "forms"),
    [
        ("https://h.example", ("https://h.example", "https://h.example:443")),
        ("https://h.example:443", ("https://h.example:443", "https://h.example")),
        ("http://h.example", ("http://h.example", "http://h.example:80")),
        ("https://h.example:8443/", ("https://h.example:8443", "https://h.example")),
        ("https://u:p@h.example", ("https://h.example", "https://h.example:443")),
        ("https://[::1]", ("https://[::1]", "https://[::1]:443")),
        ("https://[::1]:8443", ("https://[::1]:8443", "https://[::1]")),
    ],
)
def test_url_forms(public_url, forms):
    assert url_forms(public_url) == forms


def test_the_fast_path_computes_one_hmac(monkeypatch):
    calls = []
    original = RequestValidator.compute_signature

    def counting(self, uri, params, algorithm=None):
        calls.append(uri)
        return original(self, uri, params, algorithm)

    monkeypatch.setattr(RequestValidator, "compute_signature", counting)
    checker = SignatureChecker("https://hooks.example.com", [TOKEN, "secondary"])
    assert checker.verify(request("/twilio/status", SIG_NO_PORT)) is None
    assert calls == ["https://hooks.example.com/twilio/status"]
    calls.clear()
    assert checker.verify(request("/twilio/status", SIG_443)) is None
    # Both tokens over the configured form, then the other form.
    assert calls == ["https://hooks.example.com/twilio/status"] * 2 + [
        "https://hooks.example.com:443/twilio/status"
    ]


def test_a_raw_utf8_query_is_hashed_as_the_bytes_twilio_sent():
    # WSGI servers hand the request line over as latin-1 text: 'é' arrives as 'Ã©'.
    raw = "/twilio/status?tenant=café&x=%C3%A9".encode().decode("latin-1")
    checker = SignatureChecker("https://hooks.example.com", [TOKEN])
    assert checker.verify(request(raw, SIG_UTF8)) is None


def test_a_query_that_is_not_utf8_is_refused_not_an_error():
    raw = b"/twilio/status?tenant=\xff\xfe".decode("latin-1")
    problem = SignatureChecker("https://hooks.example.com", [TOKEN]).verify(request(raw, SIG_UTF8))
    assert problem is not None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"RAW_URI": "/a?b=%C3%A9"}, "/a?b=%C3%A9"),
        ({"RAW_URI": "/a?b=é".encode().decode("latin-1")}, "/a?b=é"),
        (
            {
                "PATH_INFO": "/é".encode().decode("latin-1"),
                "QUERY_STRING": "q=é".encode().decode("latin-1"),
            },
            "/%C3%A9?q=é",
        ),
    ],
)
def test_raw_path_decodes_utf8_bytes(environ, expected):
    assert raw_path_and_query(environ) == expected
