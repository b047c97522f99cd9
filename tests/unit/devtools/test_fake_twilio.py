import os
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator

from devtools.fake_twilio import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    FakeTwilio,
    count_segments,
)
from shared.config import load_settings
from shared.twilio_client import make_twilio_client

ROOT = Path(__file__).resolve().parents[3]
PUBLIC = "https://hooks.example.com"
SENDER = "+15005550006"
TO = "+15005550010"


class Listener:
    """A tiny stand-in for the ingress: records callbacks, answers `status`."""

    def __init__(self):
        self.received = []
        self.status = 200
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                listener.received.append((self.path, dict(self.headers), dict(parse_qsl(body))))
                self.send_response(listener.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def statuses(self):
        return [form["MessageStatus"] for _, _, form in self.received]


@pytest.fixture
def listener():
    running = Listener()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
def fake(listener):
    with FakeTwilio(routes={PUBLIC: listener.base_url}) as running:
        yield running


@pytest.fixture
def client(fake):
    settings = load_settings(
        {
            "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
            "TWILIO_API_BASE_URL": fake.base_url,
        }
    )
    return make_twilio_client(settings)


# --- create -------------------------------------------------------------------------------


def test_create_answers_a_queued_message_shaped_like_twilios(client, fake):
    message = client.messages.create(
        to=TO,
        from_=SENDER,
        body="Your code is 123456",
        status_callback=f"{PUBLIC}/twilio/status",
        attempt=2,
    )
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert (message.status, message.to, message.from_) == ("queued", TO, SENDER)
    assert message.account_sid == DEFAULT_ACCOUNT_SID
    assert (message.num_segments, message.num_media, message.direction) == (
        "1",
        "0",
        "outbound-api",
    )
    assert message.date_created.tzinfo is not None  # RFC 2822 parsed by the SDK
    assert message.error_code is None
    [created] = fake.created
    assert created.sid == message.sid
    assert created.form["Attempt"] == ["2"]
    assert created.form["StatusCallback"] == [f"{PUBLIC}/twilio/status"]


def test_create_through_a_messaging_service_is_accepted_without_a_sender(client, fake):
    service = fake.add_messaging_service(phone_numbers=[SENDER])
    message = client.messages.create(to=TO, messaging_service_sid=service, body="hi")
    assert (message.status, message.from_, message.messaging_service_sid) == (
        "accepted",
        None,
        service,
    )


def test_create_with_media_is_an_mms_keeping_every_media_url(client, fake):
    urls = ["https://example.com/a.png", "https://example.com/b.png"]
    message = client.messages.create(to=TO, from_=SENDER, media_url=urls)
    assert re.fullmatch(r"MM[0-9a-f]{32}", message.sid)
    assert message.num_media == "2"
    assert fake.created[0].form["MediaUrl"] == urls
    assert fake.created[0].media_urls == tuple(urls)


def _missing(**kwargs):
    return kwargs


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        (_missing(to="", from_=SENDER, body="x"), 21604),
        (_missing(to="12345", from_=SENDER, body="x"), 21211),
        (_missing(to=TO, body="x"), 21603),
        (_missing(to=TO, from_="not a number!", body="x"), 21212),
        (_missing(to=TO, messaging_service_sid="MG" + "0" * 32, body="x"), 21705),
        (_missing(to=TO, from_=SENDER), 21602),
        (_missing(to=TO, from_=SENDER, body="x" * 1601), 21617),
        (_missing(to=TO, from_=SENDER, body="x", status_callback="https://a_b.example/s"), 21609),
        (_missing(to=TO, from_=SENDER, body="x", status_callback="/relative"), 21609),
    ],
)
def test_invalid_creates_get_twilios_400_and_code_and_create_nothing(client, fake, kwargs, code):
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(**kwargs)
    assert (err.value.status, err.value.code) == (400, code)
    assert fake.created == []


def test_a_service_send_without_content_is_21619(client, fake):
    service = fake.add_messaging_service()
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to=TO, messaging_service_sid=service)
    assert err.value.code == 21619


@pytest.mark.parametrize(
    "to", ["+15005550010", "whatsapp:+15005550010", "rcs:+15005550010", "messenger:1234"]
)
def test_phone_numbers_and_channel_addresses_are_valid_recipients(client, to):
    assert client.messages.create(to=to, from_=SENDER, body="x").to == to


def test_a_rejected_recipient_gets_its_twilio_code_and_others_do_not(client, fake):
    fake.reject_to("+15005550009", 21610, message="Attempt to send to unsubscribed recipient")
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="+15005550009", from_=SENDER, body="x")
    assert (err.value.status, err.value.code) == (400, 21610)
    assert "unsubscribed" in err.value.msg
    client.messages.create(to=TO, from_=SENDER, body="x")
    assert [m.to for m in fake.created] == [TO]


def test_a_500_then_the_retry_succeeds(client, fake):
    fake.fail_next_creates(status=500, times=1)
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to=TO, from_=SENDER, body="x")
    assert (err.value.status, err.value.code) == (500, 20500)
    assert fake.created == []
    message = client.messages.create(to=TO, from_=SENDER, body="x")
    assert [m.sid for m in fake.created] == [message.sid]
    assert len(fake.requests) == 2


def test_429_carries_retry_after(client, fake):
    fake.fail_next_creates(status=429, retry_after=7)
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to=TO, from_=SENDER, body="x")
    assert (err.value.status, err.value.code) == (429, 20429)
    # TwilioRestException keeps no headers; the SDK's last response does.
    assert client.http_client._test_only_last_response.headers["Retry-After"] == "7"


def test_a_hung_create_still_creates_the_message(fake):
    settings = load_settings(
        {
            "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
            "TWILIO_API_BASE_URL": fake.base_url,
            "TWILIO_TIMEOUT": "0.2",
        }
    )
    client = make_twilio_client(settings)
    fake.hang_next_creates(seconds=5)
    with pytest.raises(Exception, match="timed out"):
        client.messages.create(to=TO, from_=SENDER, body="x")
    [found] = client.messages.list(to=TO)
    assert found.sid == fake.created[0].sid


def test_concurrent_creates_are_all_kept(client, fake):
    with ThreadPoolExecutor(8) as pool:
        sids = list(
            pool.map(
                lambda i: client.messages.create(to=TO, from_=SENDER, body=str(i)).sid, range(40)
            )
        )
    assert len(set(sids)) == 40
    assert sorted(m.sid for m in fake.created) == sorted(sids)
    assert len(fake.requests) == 40


# --- list and fetch -------------------------------------------------------------------------


@pytest.fixture
def history(fake):
    """Five messages to TO over three days and one to someone else."""
    at = [
        datetime(2026, 1, day, hour, tzinfo=UTC) for day, hour in [(1, 9), (2, 9), (2, 18), (3, 9)]
    ]
    sids = [fake.add_message(TO, date_sent=moment) for moment in at]
    sids.append(fake.add_message(TO, date_sent=datetime(2026, 1, 3, 10, tzinfo=UTC)))
    fake.add_message("+15005550011", date_sent=datetime(2026, 1, 2, 9, tzinfo=UTC))
    return sids


def test_list_filters_by_recipient_newest_first_across_pages(client, fake, history):
    found = client.messages.list(to=TO, page_size=2)
    assert [m.sid for m in found] == history[::-1]
    gets = [r for r in fake.requests if r.method == "GET"]
    assert len(gets) == 3
    assert gets[1].value("PageToken") == "PA" + history[3]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"date_sent": date(2026, 1, 2)}, [2, 1]),
        ({"date_sent_before": date(2026, 1, 2)}, [2, 1, 0]),
        ({"date_sent_after": date(2026, 1, 2)}, [4, 3, 2, 1]),
        ({"date_sent_after": datetime(2026, 1, 2, 12, tzinfo=UTC)}, [4, 3, 2]),
        ({"from_": "+15005550099"}, []),
    ],
)
def test_list_filters_by_date_sent_inclusively(client, history, filters, expected):
    found = client.messages.list(to=TO, **filters)
    assert [m.sid for m in found] == [history[i] for i in expected]


def test_stream_stops_at_its_limit(client, history):
    assert [m.sid for m in client.messages.stream(to=TO, limit=3, page_size=2)] == history[:1:-1]


def test_fetch_shows_the_current_status(client, fake):
    sid = client.messages.create(to=TO, from_=SENDER, body="x").sid
    fake.set_status(sid, "undelivered", error_code=30003)
    fetched = client.messages(sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)


def test_fetching_an_unknown_message_is_20404(client):
    with pytest.raises(TwilioRestException) as err:
        client.messages("SM" + "f" * 32).fetch()
    assert (err.value.status, err.value.code) == (404, 20404)


# --- numbers and services --------------------------------------------------------------------


def test_a_number_is_found_by_phone_number_and_updated(client, fake):
    sid = fake.add_phone_number(SENDER)
    fake.add_phone_number("+15005550007")
    [number] = client.incoming_phone_numbers.list(phone_number=SENDER)
    assert number.sid == sid
    updated = client.incoming_phone_numbers(sid).update(
        sms_url=f"{PUBLIC}/twilio/inbound", status_callback=f"{PUBLIC}/twilio/calls"
    )
    assert updated.sms_url == f"{PUBLIC}/twilio/inbound"
    assert fake.phone_number(SENDER).fields["status_callback"] == f"{PUBLIC}/twilio/calls"


def test_a_service_callback_set_through_the_api_receives_its_messages_statuses(
    client, fake, listener
):
    service = fake.add_messaging_service(phone_numbers=["+15005550001"])
    client.messaging.v1.services(service).update(status_callback=f"{PUBLIC}/twilio/status")
    sid = client.messages.create(to=TO, messaging_service_sid=service, body="hi").sid
    fake.send_status(sid, "queued")
    [(path, _, form)] = listener.received
    assert path == "/twilio/status"
    assert (form["MessagingServiceSid"], form["From"]) == (service, "+15005550001")
    assert client.messages(sid).fetch().from_ == "+15005550001"


def test_services_and_their_sender_pools_are_listed_across_pages(client, fake):
    pool_sid = fake.add_phone_number("+15005550002")
    first = fake.add_messaging_service(phone_numbers=["+15005550001", "+15005550002"])
    others = [fake.add_messaging_service(phone_numbers=[]) for _ in range(2)]
    listed = list(client.messaging.v1.services.stream(page_size=2))
    assert sorted(s.sid for s in listed) == sorted([first, *others])
    assert len(fake.requests) == 2  # two pages, the second reached through meta.next_page_url
    pool = client.messaging.v1.services(first).phone_numbers.list()
    assert [(n.phone_number, n.service_sid) for n in pool] == [
        ("+15005550001", first),
        ("+15005550002", first),
    ]
    assert pool[1].sid == pool_sid  # a number the account holds keeps its PN sid
    assert re.fullmatch(r"PN[0-9a-f]{32}", pool[0].sid)
    assert client.messaging.v1.services(others[0]).phone_numbers.list() == []


def test_unknown_numbers_and_services_are_20404(client):
    with pytest.raises(TwilioRestException) as err:
        client.messaging.v1.services("MG" + "1" * 32).update(status_callback=f"{PUBLIC}/s")
    assert err.value.code == 20404
    # A list page that is not a 200 is the SDK's plain TwilioException, with the response.
    with pytest.raises(TwilioException, match="20404"):
        client.messaging.v1.services("MG" + "1" * 32).phone_numbers.list()


# --- status callbacks ------------------------------------------------------------------------


def test_a_status_callback_is_signed_for_the_public_url_and_posted_to_the_listener(
    client, fake, listener
):
    url = f"{PUBLIC}/twilio/status?tenant=42"
    sid = client.messages.create(to=TO, from_=SENDER, body="x", status_callback=url).sid
    sent = fake.send_status(sid, "delivered")
    [(path, headers, form)] = listener.received
    assert path == "/twilio/status?tenant=42"
    validator = RequestValidator(DEFAULT_AUTH_TOKEN)
    assert validator.validate(url, form, headers["X-Twilio-Signature"])
    assert not validator.validate(listener.base_url + path, form, headers["X-Twilio-Signature"])
    assert headers["User-Agent"] == "TwilioProxy/1.1"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["I-Twilio-Idempotency-Token"])
    assert form["MessageSid"] == form["SmsSid"] == sid
    assert form["MessageStatus"] == form["SmsStatus"] == "delivered"
    assert (form["AccountSid"], form["ApiVersion"], form["To"]) == (
        DEFAULT_ACCOUNT_SID,
        "2010-04-01",
        TO,
    )
    assert re.fullmatch(r"\d{10}", form["RawDlrDoneDate"])
    assert "ErrorCode" not in form
    assert sent.status_code == 200


def test_a_failure_callback_carries_the_error_code_and_fetch_agrees(client, fake, listener):
    sid = client.messages.create(
        to=TO, from_=SENDER, body="x", status_callback=f"{PUBLIC}/twilio/status"
    ).sid
    fake.send_status(sid, "undelivered", 30003, extra={"RawDlrDoneDate": None})
    [(_, _, form)] = listener.received
    assert form["ErrorCode"] == "30003"
    assert "RawDlrDoneDate" not in form
    assert client.messages(sid).fetch().error_code == 30003


def test_a_fragment_is_neither_sent_nor_signed_and_sets_the_retries(client, fake, listener):
    url = f"{PUBLIC}/twilio/status#rc=2&rp=5xx"
    sid = client.messages.create(to=TO, from_=SENDER, body="x", status_callback=url).sid
    listener.status = 503
    fake.send_status(sid, "sent")
    assert [path for path, _, _ in listener.received] == ["/twilio/status"] * 3
    tokens = {headers["I-Twilio-Idempotency-Token"] for _, headers, _ in listener.received}
    assert len(tokens) == 1
    assert RequestValidator(DEFAULT_AUTH_TOKEN).validate(
        f"{PUBLIC}/twilio/status",
        listener.received[0][2],
        listener.received[0][1]["X-Twilio-Signature"],
    )


def test_by_default_a_5xx_is_not_retried_but_a_refused_connection_is_once(client, fake, listener):
    sid = client.messages.create(
        to=TO, from_=SENDER, body="x", status_callback=f"{PUBLIC}/twilio/status"
    ).sid
    listener.status = 503
    assert fake.send_status(sid, "sent").status_code == 503
    assert len(listener.received) == 1
    listener.server.server_close()  # nothing listens any more
    lost = fake.send_status(sid, "delivered")
    assert (lost.status_code, lost.attempt) == (None, 2)
    assert lost.error


def test_auto_deliver_sends_sent_then_the_final_status_in_order(client, fake, listener):
    fake.auto_deliver()
    fake.auto_deliver("undelivered", 30005, to="+15005550011")
    callback = f"{PUBLIC}/twilio/status"
    ok = client.messages.create(to=TO, from_=SENDER, body="x", status_callback=callback).sid
    assert fake.wait_idle()
    bad = client.messages.create(
        to="+15005550011", from_=SENDER, body="x", status_callback=callback
    ).sid
    assert fake.wait_idle()
    by_sid = {}
    for _, _, form in listener.received:
        by_sid.setdefault(form["MessageSid"], []).append(
            (form["MessageStatus"], form.get("ErrorCode"))
        )
    assert by_sid == {
        ok: [("sent", None), ("delivered", None)],
        bad: [("sent", None), ("undelivered", "30005")],
    }


def test_reset_forgets_messages_requests_and_faults(client, fake):
    client.messages.create(to=TO, from_=SENDER, body="x")
    fake.reject_to(TO, 21610)
    fake.reset()
    assert (fake.created, fake.requests, fake.callbacks) == ([], [], [])
    client.messages.create(to=TO, from_=SENDER, body="x")


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("hi", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("{" * 80, 1),  # extension characters cost two septets
        ("{" * 81, 2),
        ("ж" * 70, 1),  # outside GSM-7: UCS-2, 70 per single segment
        ("ж" * 71, 2),
        ("", 1),
    ],
)
def test_segments_are_counted_as_twilio_bills_them(body, segments):
    assert count_segments(body) == segments


def test_runs_standalone_for_make_run():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.fake_twilio", "--port", "0", "--auto-deliver"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        base_url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        settings = load_settings(
            {
                "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
                "TWILIO_API_BASE_URL": base_url,
            }
        )
        message = make_twilio_client(settings).messages.create(to=TO, from_=SENDER, body="x")
        assert message.status == "queued"
    finally:
        process.terminate()
        process.stdout.close()
    assert process.wait(timeout=10) == 0
