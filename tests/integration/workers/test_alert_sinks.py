"""The alert sinks against real servers on 127.0.0.1: an HTTP server and an SMTP server."""

from __future__ import annotations

import email
import json
import logging
import socket
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from devtools.webhook_receiver import WebhookReceiver
from shared.config import ConfigError, load_settings
from workers.alerts.alert import Alert, as_json, slack_text
from workers.alerts.sinks import (
    EmailSink,
    LogSink,
    SinkError,
    WebhookSink,
    parse_smtp_url,
    sink_named,
    sinks_from_settings,
)

TIMEOUT = 0.5
ALERT = Alert(
    kind="error_code",
    code=30007,
    count=3,
    sample_sids=["SM001", "SM002"],
    window_start=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    window_end=datetime(2024, 5, 1, 12, 1, tzinfo=UTC),
    summary="3 messages filtered by the carrier",
    detail={"reason": "Message filtered"},
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.mark.parametrize("path", ["/ok", "/accepted"])
def test_webhook_posts_the_text_and_the_alert_as_json(receiver, path):
    WebhookSink(receiver.url + path, TIMEOUT).send(ALERT)
    [(got_path, headers, body)] = receiver.posts
    assert got_path == path
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"text": slack_text(ALERT), "alert": as_json(ALERT)}


@pytest.mark.parametrize(
    ("path", "permanent", "retry_after"),
    [
        ("/down", False, None),
        ("/busy", False, 7.0),
        ("/gone", True, None),
        # A redirected POST would arrive as a bodyless GET: the URL needs fixing, not a retry.
        ("/moved", True, None),
    ],
)
def test_webhook_failure_answers_raise(receiver, path, permanent, retry_after):
    with pytest.raises(SinkError) as caught:
        WebhookSink(receiver.url + path, TIMEOUT).send(ALERT)
    assert caught.value.sink == "webhook"
    assert caught.value.permanent is permanent
    assert caught.value.retry_after == retry_after
    assert [p for p, _, _ in receiver.posts] == [path]


def test_webhook_that_does_not_answer_in_time_is_a_transient_error(receiver):
    with pytest.raises(SinkError) as caught:
        WebhookSink(receiver.url + "/hang", TIMEOUT).send(ALERT)
    assert caught.value.permanent is False
    assert "timed out" in str(caught.value)


def test_webhook_on_a_closed_port_is_a_transient_error():
    with pytest.raises(SinkError) as caught:
        WebhookSink(f"http://127.0.0.1:{_free_port()}/hook", TIMEOUT).send(ALERT)
    assert caught.value.permanent is False
    assert "unreachable" in str(caught.value)


# --- a mail server --------------------------------------------------------------------------


class Mailbox:
    """aiosmtpd handler: keeps what it is sent; `refuse_rcpt` / `defer_data` make it say no."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        self.logins: list[tuple[str, str]] = []
        self.refuse_rcpt = False
        self.defer_data = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.refuse_rcpt:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.defer_data:
            return "451 4.3.0 try again later"
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login = (auth_data.login.decode(), auth_data.password.decode())
        self.logins.append(login)
        # handled=False: aiosmtpd then answers 535 itself (True means "I replied already").
        return AuthResult(success=login == ("alerts", "p@ss word"), handled=False)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = _free_port()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=box.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _email_sink(url: str, **kwargs: object) -> EmailSink:
    return EmailSink(
        parse_smtp_url(url),
        "alerts@example.com",
        ["ops@example.com", "oncall@example.com"],
        TIMEOUT,
        **kwargs,
    )


def _received(box: Mailbox) -> email.message.EmailMessage:
    [(mail_from, rcpt_tos, content)] = box.envelopes
    assert mail_from == "alerts@example.com"
    assert rcpt_tos == ["ops@example.com", "oncall@example.com"]
    return email.message_from_bytes(content, policy=policy.default)


def test_email_reaches_the_mail_server(mailbox):
    box, port = mailbox
    _email_sink(f"smtp://127.0.0.1:{port}").send(ALERT)
    msg = _received(box)
    assert msg["Subject"] == "[statuspipe] 3 messages filtered by the carrier"
    assert msg["To"] == "ops@example.com, oncall@example.com"
    body = msg.get_content().replace("\r\n", "\n")
    assert slack_text(ALERT) in body
    assert json.loads(body[body.index("{") :]) == as_json(ALERT)
    assert box.logins == []


def test_email_logs_in_with_the_url_decoded_credentials(mailbox):
    box, port = mailbox
    _email_sink(f"smtp://alerts:p%40ss%20word@127.0.0.1:{port}").send(ALERT)
    assert box.logins == [("alerts", "p@ss word")]
    _received(box)


def test_email_with_refused_credentials_is_a_permanent_error(mailbox):
    box, port = mailbox
    with pytest.raises(SinkError) as caught:
        _email_sink(f"smtp://alerts:wrong@127.0.0.1:{port}").send(ALERT)
    assert caught.value.permanent is True
    assert box.envelopes == []


@pytest.mark.parametrize(
    ("refuse_rcpt", "defer_data", "permanent"),
    [(True, False, True), (False, True, False)],
)
def test_email_refusals_by_reply_code(mailbox, refuse_rcpt, defer_data, permanent):
    box, port = mailbox
    box.refuse_rcpt, box.defer_data = refuse_rcpt, defer_data
    with pytest.raises(SinkError) as caught:
        _email_sink(f"smtp://127.0.0.1:{port}").send(ALERT)
    assert caught.value.sink == "email"
    assert caught.value.permanent is permanent
    assert box.envelopes == []


def test_email_over_starttls(tls_files):
    cert, key = tls_files
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    box, port = Mailbox(), _free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, tls_context=server_tls, require_starttls=True
    )
    controller.start()
    try:
        client_tls = ssl.create_default_context(cafile=str(cert))
        _email_sink(f"smtp://127.0.0.1:{port}?starttls=true", ssl_context=client_tls).send(ALERT)
        # Without STARTTLS this server refuses the mail: it really was sent encrypted.
        with pytest.raises(SinkError):
            _email_sink(f"smtp://127.0.0.1:{port}").send(ALERT)
    finally:
        controller.stop()
    _received(box)


def test_email_over_smtps(tls_files):
    cert, key = tls_files
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    box, port = Mailbox(), _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, ssl_context=server_tls)
    controller.start()
    try:
        client_tls = ssl.create_default_context(cafile=str(cert))
        _email_sink(f"smtps://127.0.0.1:{port}", ssl_context=client_tls).send(ALERT)
    finally:
        controller.stop()
    _received(box)


def test_email_to_an_untrusted_certificate_is_a_permanent_error(tls_files):
    cert, key = tls_files
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    box, port = Mailbox(), _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, tls_context=server_tls)
    controller.start()
    try:
        with pytest.raises(SinkError) as caught:
            _email_sink(f"smtp://127.0.0.1:{port}?starttls=true").send(ALERT)
    finally:
        controller.stop()
    assert caught.value.permanent is True
    assert box.envelopes == []


def test_email_on_a_closed_port_is_a_transient_error():
    with pytest.raises(SinkError) as caught:
        _email_sink(f"smtp://127.0.0.1:{_free_port()}").send(ALERT)
    assert caught.value.permanent is False


def test_email_to_a_server_that_never_greets_is_a_transient_error():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(SinkError) as caught:
            _email_sink(f"smtp://127.0.0.1:{port}").send(ALERT)
    assert caught.value.permanent is False


# --- the log --------------------------------------------------------------------------------


def test_log_sink_writes_one_warning_line_of_json(caplog):
    caplog.set_level(logging.WARNING, logger="workers.alerts.sinks")
    LogSink().send(ALERT)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    line = record.getMessage()
    assert "\n" not in line
    assert line.startswith("alert ")
    assert json.loads(line.removeprefix("alert ")) == as_json(ALERT)


# --- from the settings ----------------------------------------------------------------------


def test_only_the_log_sink_without_settings():
    assert [s.name for s in sinks_from_settings(load_settings({}))] == ["log"]


def test_configured_sinks_each_deliver(receiver, mailbox):
    box, port = mailbox
    settings = load_settings(
        {
            "ALERT_WEBHOOK_URL": receiver.url + "/ok",
            "SMTP_URL": f"smtp://127.0.0.1:{port}",
            "ALERT_EMAIL_FROM": "alerts@example.com",
            "ALERT_EMAIL_TO": "ops@example.com, oncall@example.com,",
            "ALERT_SINK_TIMEOUT": "2",
        }
    )
    sinks = sinks_from_settings(settings)
    assert [s.name for s in sinks] == ["log", "webhook", "email"]
    # One sink at a time, as a task that retries a failing sink alone calls them.
    for name in ("webhook", "email"):
        sink_named(settings, name).send(ALERT)
    assert len(receiver.posts) == 1
    _received(box)
    with pytest.raises(LookupError):
        sink_named(load_settings({}), "email")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALERT_WEBHOOK_URL": "ftp://hooks.example.com"}, "ALERT_WEBHOOK_URL must be"),
        ({"SMTP_URL": "imap://mail.example.com"}, "SMTP_URL must start with"),
        ({"SMTP_URL": "smtp://:25"}, "SMTP_URL names no host"),
        ({"SMTP_URL": "smtp://mail.example.com:port"}, "SMTP_URL has an invalid port"),
        ({"SMTP_URL": "smtp://mail.example.com?tls=1"}, "only the starttls option"),
        ({"SMTP_URL": "smtp://mail.example.com?starttls=maybe"}, "starttls must be true or"),
        (
            {"SMTP_URL": "smtps://mail.example.com", "ALERT_EMAIL_TO": "ops@example.com"},
            "ALERT_EMAIL_FROM is required",
        ),
        (
            {"SMTP_URL": "smtps://mail.example.com", "ALERT_EMAIL_FROM": "a@example.com"},
            "ALERT_EMAIL_TO is required",
        ),
        ({"ALERT_WINDOW_SECONDS": "0"}, "ALERT_WINDOW_SECONDS must be at least 1"),
        ({"ALERT_SINK_TIMEOUT": "soon"}, "ALERT_SINK_TIMEOUT must be a number"),
    ],
)
def test_unusable_alert_settings_stop_at_start(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


@pytest.mark.parametrize(
    ("url", "host", "port", "implicit_tls", "starttls", "user", "password"),
    [
        ("smtp://mail.example.com", "mail.example.com", 25, False, False, "", ""),
        (
            "smtp://u:p@mail.example.com:587?starttls=true",
            "mail.example.com",
            587,
            False,
            True,
            "u",
            "p",
        ),
        ("smtps://mail.example.com", "mail.example.com", 465, True, False, "", ""),
        ("smtps://a%40b:x%2Fy@10.0.0.1:2465", "10.0.0.1", 2465, True, False, "a@b", "x/y"),
    ],
)
def test_parse_smtp_url(url, host, port, implicit_tls, starttls, user, password):
    t = parse_smtp_url(url)
    assert (t.host, t.port, t.implicit_tls, t.starttls, t.username, t.password) == (
        host,
        port,
        implicit_tls,
        starttls,
        user,
        password,
    )
