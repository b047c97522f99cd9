"""Where alerts go: the log (always), a webhook and email (when configured).

Each sink sends one alert and either returns or raises `SinkError`; it never retries itself, so
a task can retry one failing sink with backoff without repeating the others. `permanent` on the
error says a retry cannot help (a 4xx, refused credentials): stop and log loudly instead.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from http.client import HTTPException
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from shared.config import Settings
from workers.alerts.alert import Alert, as_json, slack_text

log = logging.getLogger(__name__)

SMTP_PORT = 25
SMTPS_PORT = 465
USER_AGENT = "statuspipe-alerts"


class SinkError(Exception):
    """A sink could not take the alert. The caller keeps the alert and retries unless permanent.

    `retry_after` is the wait the receiver asked for (a 429's Retry-After), in seconds, if any.
    """

    def __init__(
        self, sink: str, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{sink}: {message}")
        self.sink = sink
        self.permanent = permanent
        self.retry_after = retry_after


class Sink(Protocol):
    """Sends one alert; returns once the receiver took it, raises `SinkError` otherwise."""

    name: str

    def send(self, alert: Alert) -> None: ...


class LogSink:
    """One WARNING line per alert, `alert ` followed by the alert's JSON, for log pipelines."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log

    def send(self, alert: Alert) -> None:
        self._log.warning("alert %s", json.dumps(as_json(alert), sort_keys=True))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a bodyless GET and report success; a webhook URL
    # that redirects is misconfigured and should say so.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    raw = exc.headers.get("Retry-After") if exc.headers is not None else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None  # An HTTP date: rare from webhooks, and the caller's backoff still applies.


class WebhookSink:
    """POSTs `{"text": slack_text, "alert": as_json}` as JSON; any 2xx is success.

    Timeouts, refused connections, 5xx and 429 are transient; any other 3xx/4xx is permanent.
    `timeout` bounds each connect and read, not the whole exchange.
    """

    name = "webhook"

    def __init__(self, url: str, timeout: float) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"webhook URL must be http(s), got {url!r}")
        self.url = url
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(self, alert: Alert) -> None:
        body = json.dumps({"text": slack_text(alert), "alert": as_json(alert)}).encode()
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__.
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            transient = exc.code == 429 or exc.code >= 500
            raise SinkError(
                self.name,
                f"{self.url} answered {exc.code} {exc.reason}",
                permanent=not transient,
                retry_after=_retry_after(exc),
            ) from exc
        except (urllib.error.URLError, HTTPException, OSError) as exc:
            # URLError wraps refused connections and DNS failures; a read past the timeout
            # raises TimeoutError (an OSError) directly.
            reason = getattr(exc, "reason", None) or exc
            raise SinkError(self.name, f"{self.url} unreachable: {reason}") from exc


@dataclass(frozen=True)
class SmtpTarget:
    """A mail server read from SMTP_URL."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str
    password: str


def parse_smtp_url(url: str) -> SmtpTarget:
    """`smtp://user:pass@host:587?starttls=true` or `smtps://user:pass@host:465`.

    Port defaults: 25 for smtp, 465 for smtps. Credentials are URL-decoded. load_settings has
    already rejected a URL this cannot read.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SMTP URL must be smtp://host or smtps://host")
    options = dict(parse_qsl(parts.query))
    implicit_tls = parts.scheme == "smtps"
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or (SMTPS_PORT if implicit_tls else SMTP_PORT),
        implicit_tls=implicit_tls,
        starttls=options.get("starttls", "").strip().lower() in {"1", "true", "yes", "on"},
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def _smtp_permanent(exc: smtplib.SMTPException) -> bool:
    # A 5xx reply is the server's final word (bad credentials, refused sender); 4xx is "later".
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return True
    code = getattr(exc, "smtp_code", 0)
    return isinstance(code, int) and code >= 500


class EmailSink:
    """One email per alert: subject from the summary, body the Slack text then the JSON."""

    name = "email"

    def __init__(
        self,
        target: SmtpTarget,
        sender: str,
        recipients: list[str],
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not recipients:
            raise ValueError("EmailSink needs at least one recipient")
        self.target = target
        self.sender = sender
        self.recipients = recipients
        self.timeout = timeout
        self._ssl_context = ssl_context or ssl.create_default_context()

    def message(self, alert: Alert) -> EmailMessage:
        """The email for `alert` (pure; exposed so its content can be checked)."""
        msg = EmailMessage()
        msg["Subject"] = f"[statuspipe] {alert.summary}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        doc = json.dumps(as_json(alert), indent=2, sort_keys=True)
        msg.set_content(f"{slack_text(alert)}\n\n{doc}\n")
        return msg

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        if t.implicit_tls:
            return smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=self._ssl_context)
        return smtplib.SMTP(t.host, t.port, timeout=self.timeout)

    def send(self, alert: Alert) -> None:
        msg = self.message(alert)
        where = f"{self.target.host}:{self.target.port}"
        try:
            with self._connect() as smtp:
                if self.target.starttls:
                    smtp.starttls(context=self._ssl_context)
                if self.target.username:
                    smtp.login(self.target.username, self.target.password)
                refused = smtp.send_message(msg, self.sender, self.recipients)
        except smtplib.SMTPException as exc:
            permanent = _smtp_permanent(exc)
            raise SinkError(self.name, f"{where}: {exc}", permanent=permanent) from exc
        except ssl.SSLCertVerificationError as exc:
            raise SinkError(self.name, f"{where}: {exc}", permanent=True) from exc
        except OSError as exc:
            raise SinkError(self.name, f"{where} unreachable: {exc}") from exc
        if refused:
            # The others have it: raising would send it to them again on retry.
            log.error("alert email to %s refused by %s: %s", sorted(refused), where, refused)


def sinks_from_settings(settings: Settings) -> list[Sink]:
    """The log sink, then the webhook and email sinks that the settings turn on."""
    sinks: list[Sink] = [LogSink()]
    if settings.alert_webhook_url:
        sinks.append(WebhookSink(settings.alert_webhook_url, settings.alert_sink_timeout))
    if settings.smtp_url:
        recipients = [a.strip() for a in settings.alert_email_to.split(",") if a.strip()]
        sinks.append(
            EmailSink(
                parse_smtp_url(settings.smtp_url),
                settings.alert_email_from,
                recipients,
                settings.alert_sink_timeout,
            )
        )
    return sinks


def sink_named(settings: Settings, name: str) -> Sink:
    """The configured sink called `name`, for a task that retries one sink alone."""
    for sink in sinks_from_settings(settings):
        if sink.name == name:
            return sink
    raise LookupError(f"no alert sink {name!r} is configured")
