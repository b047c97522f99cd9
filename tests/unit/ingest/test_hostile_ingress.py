"""Hostile input to /twilio/status, property-based: whatever arrives (bodies, encodings, headers,
sizes, methods, paths), the answer is one of the documented ones, never a 500, and nothing is
enqueued unless the request carries a valid signature. In-process, fakeredis."""

from __future__ import annotations

import functools
from urllib.parse import parse_qsl, quote, urlencode

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from tests.twilio_fixtures import AUTH_TOKEN
from tests.unit.ingest.ingress_client import PUBLIC, STREAM, make_app

SHARED = ("k1", "shared-secret-k1")
# README "HTTP interface": every answer /twilio/status may give (no Redis trouble here).
DOCUMENTED = {200, 400, 401, 403, 405, 413, 415}
SID = "SM" + "0123456789abcdef" * 2
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@functools.cache
def app_and_redis():
    return make_app(TWILIO_SHARED_KEYS=f"{SHARED[0]}={SHARED[1]}")


@functools.cache
def basic_auth_app():
    return make_app(CALLBACK_BASIC_AUTH="twilio:pw")


# --- pieces of a hostile request ---------------------------------------------------------

texts = st.text(max_size=40)  # any code point, NUL and surrogates' neighbours included
nasty_values = st.one_of(
    texts,
    st.sampled_from(["", "\x00", "%", "%%", "%zz", "%FF", "%C3", "%00", "+", "&", "=", "é",
                     "'; DROP TABLE messages;--", "SM" + "0" * 32, "\u2028", "\ud7ff", "a" * 1000]),
)  # fmt: skip
keys = st.one_of(texts, st.sampled_from(["", "MessageSid", "MessageStatus", "To", "From", "="]))


@st.composite
def form_bodies(draw, large: bool = True) -> bytes:
    """A form-encoded body, often near-valid, with repeated, empty and odd keys, or raw bytes;
    `large`: also thousands of fields and sizes around the limit."""
    kinds = ["fields", "raw", "escapes"] + (["many", "size"] if large else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "raw":
        return draw(st.binary(max_size=2000))
    if kind == "size":  # around the 64 KiB limit
        return b"MessageSid=" + b"x" * draw(st.integers(64 * 1024 - 20, 64 * 1024 + 20))
    if kind == "many":
        n = draw(st.integers(1000, 6000))
        return ("&".join(f"f{i}=v{i}" for i in range(n)) +
                f"&MessageSid={SID}&MessageStatus=sent").encode()  # fmt: skip
    if kind == "escapes":
        pieces = draw(st.lists(st.sampled_from(["%", "%2", "%FF", "%C3%28", "%00", "+", "&", "=",
                                                "MessageSid=", SID, "MessageStatus=", "x"]),
                               max_size=30))  # fmt: skip
        return "".join(pieces).encode()
    pairs = draw(st.lists(st.tuples(keys, nasty_values), max_size=12))
    if draw(st.booleans()):
        pairs += [("MessageSid", SID), ("MessageStatus", draw(nasty_values))]
    raw = "&".join(f"{quote(k, safe='')}={quote(v, safe='', errors='surrogatepass')}"
                   for k, v in pairs)  # fmt: skip
    return raw.encode("utf-8", "surrogatepass")


paths = st.one_of(
    st.just("/twilio/status"),
    st.just("/twilio/status"),
    st.builds(lambda q: "/twilio/status?" + quote(q, safe="=&%"), st.text(max_size=40)),
    st.sampled_from(["/twilio/status?tenant=é", "/twilio/status?%FF=%00", "/twilio/status/",
                     "/twilio/status%00", "/twilio//status", "/TWILIO/STATUS"]),
)  # fmt: skip
methods = st.one_of(
    st.just("POST"),
    st.sampled_from(["GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND",
                     "BREW"]),
)  # fmt: skip
content_types = st.sampled_from([
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
    "APPLICATION/X-WWW-FORM-URLENCODED", "application/json", "multipart/form-data", "",
    "text/plain", "application/x-www-form-urlencoded; charset=latin-1", "\x00",
])  # fmt: skip
signatures = st.one_of(
    st.none(), texts, st.sampled_from(["", "=" * 28, "RSOYDt4T1cUTdK1PDd93/VVr8B8="])
)
settings_headers = st.one_of(
    st.none(), texts,
    st.sampled_from(["key=k1,algorithm=HMAC_SHA256", "key=k1,algorithm=HMAC_MD5",
                     "key=zz,algorithm=HMAC_SHA1", "key=k1", "algorithm=HMAC_SHA256", ",,,",
                     "key=,algorithm="]),
)  # fmt: skip


def twilio_params(body: bytes) -> MultiDict | None:
    """The form as a framework hands it to twilio's validator (None: not text, Twilio could not
    have signed it)."""
    try:
        return MultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return None


def sign(path: str, method: str, body: bytes, how: str) -> tuple[str | None, str | None]:
    """(X-Twilio-Signature, settings header) for a correctly signed request, the way Twilio's
    library computes it; None when it cannot be signed."""
    params = twilio_params(body) if method == "POST" else MultiDict()
    if params is None:
        return None, None
    url = PUBLIC + path
    if how == "token":
        return RequestValidator(AUTH_TOKEN).compute_signature(url, params), None
    algorithm = "HMAC_SHA256" if how == "sha256" else "HMAC_SHA1"
    header = f"key={SHARED[0]},algorithm={algorithm}"
    return RequestValidator(SHARED[1]).compute_signature(url, params, algorithm), header


def send(client, method, path, body, headers):
    return client.open(path, method=method, data=body, headers=headers)


@FUZZ
@given(
    method=methods, path=paths, body=form_bodies(), content_type=content_types,
    signature=signatures, settings_header=settings_headers,
    extra=st.dictionaries(
        st.sampled_from(["Content-Length", "Transfer-Encoding", "Authorization",
                         "I-Twilio-Idempotency-Token", "Host", "X-Forwarded-Proto"]),
        texts.filter(lambda t: "\n" not in t and "\r" not in t), max_size=3),
)  # fmt: skip
def test_unsigned_or_wrongly_signed_requests_are_never_enqueued(
    method, path, body, content_type, signature, settings_header, extra
):
    app, redis = app_and_redis()
    before = redis.xlen(STREAM)
    headers = {"Content-Type": content_type, **extra}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    if settings_header is not None:
        headers["X-Twilio-Webhooks-Signature-Settings"] = settings_header
    headers = {k: v for k, v in headers.items() if v.isascii() or k != "Content-Length"}
    try:
        resp = send(app.test_client(), method, path, body, headers)
    except (UnicodeEncodeError, ValueError):
        event("refused by the test client")
        return  # the test client itself refuses such a header; no server would see it
    event(f"answer {resp.status_code}")
    assert resp.status_code != 500
    if path.split("?")[0] == "/twilio/status":
        assert resp.status_code in DOCUMENTED, resp.data
    # None of these carries a valid signature (a random one cannot match).
    assert redis.xlen(STREAM) == before
    assert resp.status_code != 200 or path.split("?")[0] != "/twilio/status"


@FUZZ
@given(method=st.sampled_from(["POST", "GET"]), path=paths, body=form_bodies(large=False),
       how=st.sampled_from(["token", "sha256", "sha1"]), tamper=st.booleans())  # fmt: skip
def test_signed_requests_are_accepted_exactly_when_valid(method, path, body, how, tamper):
    app, redis = app_and_redis()
    # Werkzeug's test client drops a bare trailing "?" from the request line it builds.
    path = path.rstrip("?")
    if method == "GET" and body:
        path, body = path + ("&" if "?" in path else "?") + body.decode("latin-1"), b""
        path = quote(path, safe="/?&=%+")
    if method == "GET":
        body = b""
    signature, settings_header = sign(path, method, body, how)
    if signature is None:
        signature = "unsignable"
    if tamper:
        signature = signature[::-1]
    headers = {"X-Twilio-Signature": signature}
    if method == "POST":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if settings_header:
        headers["X-Twilio-Webhooks-Signature-Settings"] = settings_header
    before = redis.xlen(STREAM)
    resp = send(app.test_client(), method, path, body, headers)
    on_callback_path = path.split("?")[0] == "/twilio/status"
    assert resp.status_code != 500
    if not on_callback_path:
        assert redis.xlen(STREAM) == before
        return
    assert resp.status_code in DOCUMENTED, resp.data
    event(f"answer {resp.status_code}")
    enqueued = redis.xlen(STREAM) - before
    assert enqueued == (1 if resp.status_code == 200 else 0)
    if resp.status_code == 200:
        assert not tamper
        ((_, entry),) = redis.xrange(
            STREAM, count=1, min=redis.xinfo_stream(STREAM)["last-generated-id"]
        )
        # Stored exactly as sent.
        if method == "POST":
            assert entry[b"b"] == body
    if not tamper and signature != "unsignable" and path.isascii():
        # What twilio's own validator accepts, statuspipe accepts: only a malformed callback
        # (400) is refused.
        assert resp.status_code in {200, 400}, resp.data


@settings(max_examples=150, deadline=None)
@given(extra=st.dictionaries(st.text(min_size=1, max_size=20), nasty_values, max_size=20),
       how=st.sampled_from(["token", "sha256", "sha1"]))  # fmt: skip
def test_well_formed_signed_callbacks_with_any_extra_fields_are_accepted_byte_exact(extra, how):
    app, redis = app_and_redis()
    fields = {**extra, "MessageSid": SID, "MessageStatus": "delivered"}
    try:
        body = urlencode(fields).encode()
    except UnicodeEncodeError:
        return  # a lone surrogate: not text Twilio could send
    signature, settings_header = sign("/twilio/status", "POST", body, how)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    if settings_header:
        headers["X-Twilio-Webhooks-Signature-Settings"] = settings_header
    resp = send(app.test_client(), "POST", "/twilio/status", body, headers)
    assert resp.status_code == 200, resp.data
    last = redis.xrevrange(STREAM, count=1)[0][1]
    assert last[b"b"] == body


@settings(max_examples=100, deadline=None)
@given(
    authorization=st.one_of(st.none(), texts,
                            st.binary(max_size=30).map(lambda b: "Basic " + b.hex())),
    body=form_bodies(large=False),
)  # fmt: skip
def test_with_basic_auth_configured_strangers_get_401_never_more(authorization, body):
    app, redis = basic_auth_app()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if authorization is not None:
        headers["Authorization"] = authorization
    try:
        resp = send(app.test_client(), "POST", "/twilio/status", body, headers)
    except (UnicodeEncodeError, ValueError):
        return
    assert resp.status_code in {400, 401, 413}
    assert redis.xlen(STREAM) == 0
