"""FakeTwilio: the server, its state and the control API tests script it through."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devtools.fake_twilio.callbacks import CallbackPoster, SentCallback, callback_form
from devtools.fake_twilio.resources import (
    ACCOUNT_URI,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_ERROR_CODES,
    DEFAULT_SENDER,
    NUMBER_FIELDS,
    SERVICE_FIELDS,
    SERVICE_FLAGS,
    Message,
    MessagingService,
    PhoneNumber,
    RecordedRequest,
    TwilioError,
    check_urls,
    count_segments,
    first,
    list_page,
    matches_date,
    message_json,
    new_sid,
    number_json,
    parse_date_filter,
    service_json,
    service_number_json,
    utc_now,
    v1_list_page,
    validate_create,
)

ACCOUNT_PATH = ACCOUNT_URI + r"/(?P<account>[^/]+)"


@dataclass
class _Fault:
    """A scripted answer for the next create: an error instead, or the real answer late."""

    status: int = 0
    code: int = 0
    message: str | None = None
    retry_after: int | None = None
    hang_seconds: float = 0.0


@dataclass
class _Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTwilio


class _Handler(BaseHTTPRequestHandler):
    """Parses one request, hands it to FakeTwilio.handle, writes the reply."""

    server: _Server
    # Keep-alive, as api.twilio.com: the client's connection pool is exercised as in production.
    protocol_version = "HTTP/1.1"
    # The headers and the body go out in two writes: with Nagle's algorithm the body waited for
    # the client's delayed ACK, 40 ms on every reused connection, and the bench's resends timed
    # the fake (73/s) instead of the actions role (about 115/s).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests assert on `fake.requests`, not on stderr."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        parts = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            form=parse_qs(raw, keep_blank_values=True),
            headers=dict(self.headers.items()),
            username=_basic_auth(self.headers.get("Authorization"))[0],
        )
        reply = self.server.fake.handle(request, self.headers.get("Authorization"))
        if reply.delay and self.server.fake.stopping.wait(reply.delay):
            self.close_connection = True  # stopping: hang up, as a Twilio that went away would
            return
        payload = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Twilio-Request-Id", new_sid("RQ"))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before a hung create answered; Twilio's case too


def _pool_sid(service_sid: str, phone_number: str) -> str:
    """A stable PN sid for a pool number the fake was not given as an IncomingPhoneNumber."""
    return "PN" + hashlib.sha256(f"{service_sid}/{phone_number}".encode()).hexdigest()[:32]


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.startswith("Basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return user, password


class FakeTwilio:
    """Twilio's REST API for one account, in a thread, on a real socket. Thread-safe."""

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        api_keys: Mapping[str, str] | None = None,
        routes: Mapping[str, str] | None = None,
        callback_workers: int = 4,
    ) -> None:
        """`api_keys`: SK sid -> secret, accepted like the account's own credentials.

        `routes`: public base -> actual base, e.g. {"https://hooks.example.com":
        "http://127.0.0.1:8000"}: callbacks are signed for the public URL (as Twilio signs what
        it calls) but posted to the listener that actually runs.
        """
        self.host, self.port = host, port
        self.account_sid = account_sid
        self.auth_token = auth_token  # settable: rotation tests sign with a new token
        self.api_keys = dict(api_keys or {})
        self._poster = CallbackPoster(routes)
        self.routes = self._poster.routes  # the same dict: add routes after construction too
        self.stopping = threading.Event()
        self._callback_workers = callback_workers
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._clear()

    def _clear(self) -> None:
        self._requests: list[RecordedRequest] = []
        self._messages: dict[str, Message] = {}
        self._numbers: dict[str, PhoneNumber] = {}
        self._services: dict[str, MessagingService] = {}
        self._faults: deque[_Fault] = deque()
        self._fetch_faults: deque[_Fault] = deque()
        self._rejections: dict[str, TwilioError] = {}
        self._auto_default: tuple[str, int | None] | None = None
        self._auto_by_to: dict[str, tuple[str, int | None]] = {}
        self._pending: set[Future[None]] = set()
        self._seq = 0

    def start(self) -> FakeTwilio:
        self.stopping.clear()
        self._server = _Server((self.host, self.port), _Handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self._executor = ThreadPoolExecutor(self._callback_workers, "fake-twilio-callback")
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # releases hung creates at once
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._executor:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._poster.close()

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """What TWILIO_API_BASE_URL should be set to."""
        if self._server is None:
            raise RuntimeError("FakeTwilio is not started")
        return f"http://{self.host}:{self.port}"

    def add_phone_number(self, phone_number: str, *, sid: str | None = None) -> str:
        """An IncomingPhoneNumber of the account; returns its PN sid."""
        moment = utc_now()
        number = PhoneNumber(
            sid=sid or new_sid("PN"),
            phone_number=phone_number,
            fields={"friendly_name": phone_number, "status_callback": ""},
            date_created=moment,
            date_updated=moment,
        )
        with self._lock:
            self._numbers[number.sid] = number
        return number.sid

    def add_messaging_service(
        self,
        *,
        sid: str | None = None,
        status_callback: str | None = None,
        phone_numbers: Iterable[str] = (),
        friendly_name: str = "statuspipe test service",
    ) -> str:
        """A Messaging Service (sender pool `phone_numbers`); returns its MG sid."""
        moment = utc_now()
        service = MessagingService(
            sid=sid or new_sid("MG"),
            fields={"friendly_name": friendly_name, "status_callback": status_callback},
            phone_numbers=list(phone_numbers),
            date_created=moment,
            date_updated=moment,
        )
        with self._lock:
            self._services[service.sid] = service
        return service.sid

    def add_message(
        self,
        to: str,
        *,
        from_: str | None = DEFAULT_SENDER,
        body: str = "seeded",
        status: str = "delivered",
        date_sent: datetime | None = None,
        error_code: int | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
    ) -> str:
        """A message that exists without a create (history for list filters); returns its sid."""
        moment = date_sent or utc_now()
        with self._lock:
            message = self._store(
                Message(
                    sid=new_sid("SM"),
                    to=to,
                    from_=from_,
                    body=body,
                    media_urls=(),
                    messaging_service_sid=messaging_service_sid,
                    status_callback=status_callback,
                    status=status,
                    date_created=moment,
                    date_sent=moment,
                    date_updated=moment,
                    num_segments=count_segments(body),
                    error_code=error_code,
                )
            )
        return message.sid

    def fail_next_creates(
        self,
        status: int = 500,
        times: int = 1,
        *,
        code: int | None = None,
        message: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """The next `times` creates answer `status` (Twilio error JSON) and create nothing."""
        code = code or DEFAULT_ERROR_CODES.get(status)
        if code is None:
            raise ValueError(f"give a Twilio code for HTTP {status}")
        with self._lock:
            for _ in range(times):
                self._faults.append(_Fault(status, code, message, retry_after))

    def fail_next_fetches(
        self,
        status: int = 429,
        times: int = 1,
        *,
        code: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        """The next `times` message fetches answer `status` (Twilio error JSON), e.g. a 429 that
        must stop a reconciliation run."""
        code = code or DEFAULT_ERROR_CODES.get(status)
        if code is None:
            raise ValueError(f"give a Twilio code for HTTP {status}")
        with self._lock:
            for _ in range(times):
                self._fetch_faults.append(_Fault(status, code, None, retry_after))

    def hang_next_creates(self, seconds: float, times: int = 1) -> None:
        """The next `times` creates succeed but answer only after `seconds`.

        Longer than the client's timeout, this is the create that raised yet created the
        message, as a real Twilio may: the reason to reconcile before resending.
        """
        with self._lock:
            for _ in range(times):
                self._faults.append(_Fault(hang_seconds=seconds))

    def reject_to(
        self, to: str, code: int, *, status: int = 400, message: str | None = None
    ) -> None:
        """Creates to `to` answer Twilio error `code` (e.g. 21610 unsubscribed) until reset."""
        with self._lock:
            self._rejections[to] = TwilioError(status, code, message)

    def auto_deliver(
        self,
        final: str | None = "delivered",
        error_code: int | None = None,
        *,
        to: str | None = None,
    ) -> None:
        """After every create (or every create to `to`), send the status callbacks Twilio would.

        In the background: `queued` (Messaging Service sends only), `sent` (unless `final` is
        failed), then `final` with `error_code`. `final=None` turns it off. For benchmarks and
        `make run`; `wait_idle()` waits for them.
        """
        outcome = (final, error_code) if final else None
        with self._lock:
            if to is None:
                self._auto_default = outcome
            elif outcome:
                self._auto_by_to[to] = outcome
            else:
                self._auto_by_to.pop(to, None)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every background callback was sent; False if some are still going."""
        with self._lock:
            pending = set(self._pending)
        return not wait(pending, timeout=timeout).not_done

    def set_status(self, sid: str, status: str, error_code: int | None = None) -> Message:
        """Change the status fetch and list show, sending no callback (a lost callback)."""
        with self._lock:
            message = self._message(sid)
            message.status, message.error_code = status, error_code
            message.date_updated = utc_now()
            if message.from_ is None:
                message.from_ = self._pick_sender(message)  # Twilio fills it once it sends
            return dataclasses.replace(message)

    def send_status(
        self,
        sid: str,
        status: str,
        error_code: int | None = None,
        *,
        extra: Mapping[str, str | None] | None = None,
        url: str | None = None,
    ) -> SentCallback:
        """Set the status and POST the callback Twilio sends for it, signed; returns the last try.

        Goes to `url`, else the message's StatusCallback, else its Messaging Service's.
        `extra` adds or (with None) removes form fields. Retries follow the URL's fragment
        overrides (default: one retry, on a connect failure only). Never raises for an
        unreachable listener: Twilio just loses the callback; see `.error`.
        """
        message = self.set_status(sid, status, error_code)
        with self._lock:
            target = url or message.status_callback or self._service_callback(message)
        if not target:
            raise ValueError(f"{sid} has no StatusCallback and no service callback")
        return self._poster.post(
            target, callback_form(self.account_sid, message, extra), self.auth_token
        )

    def message(self, sid: str) -> Message:
        with self._lock:
            return dataclasses.replace(self._message(sid))

    def phone_number(self, sid_or_number: str) -> PhoneNumber:
        with self._lock:
            for number in self._numbers.values():
                if sid_or_number in (number.sid, number.phone_number):
                    return dataclasses.replace(number, fields=dict(number.fields))
        raise KeyError(sid_or_number)

    def messaging_service(self, sid: str) -> MessagingService:
        with self._lock:
            service = self._services[sid]
            return dataclasses.replace(service, fields=dict(service.fields))

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in order (rejected ones included)."""
        with self._lock:
            return list(self._requests)

    @property
    def created(self) -> list[Message]:
        """Messages created through the API (not seeded), in order, as they are now."""
        with self._lock:
            made = [m for m in self._messages.values() if m.form is not None]
            return [dataclasses.replace(m) for m in sorted(made, key=lambda m: m.seq)]

    @property
    def callbacks(self) -> list[SentCallback]:
        """Every status callback attempt, in order."""
        return self._poster.sent

    def reset(self) -> None:
        """Forget everything: requests, messages, numbers, services, faults, auto-delivery."""
        self.wait_idle()
        with self._lock:
            self._clear()
        self._poster.clear()

    def handle(self, request: RecordedRequest, authorization: str | None) -> _Reply:
        """The reply to one request (called on the server's threads)."""
        with self._lock:
            self._requests.append(request)
        routes: list[tuple[str, str, Callable[..., _Reply]]] = [
            ("POST", ACCOUNT_PATH + r"/Messages\.json", self._create_message),
            ("GET", ACCOUNT_PATH + r"/Messages\.json", self._list_messages),
            ("GET", ACCOUNT_PATH + r"/Messages/(?P<sid>[^/]+)\.json", self._fetch_message),
            ("GET", ACCOUNT_PATH + r"/IncomingPhoneNumbers\.json", self._list_numbers),
            ("GET", ACCOUNT_PATH + r"/IncomingPhoneNumbers/(?P<sid>[^/]+)\.json", self._number),
            ("POST", ACCOUNT_PATH + r"/IncomingPhoneNumbers/(?P<sid>[^/]+)\.json", self._number),
            # messaging.twilio.com; the SDK's path has no `.json`.
            ("GET", r"/v1/Services", self._list_services),
            ("GET", r"/v1/Services/(?P<sid>[^/.]+)(?:\.json)?", self._service),
            ("POST", r"/v1/Services/(?P<sid>[^/.]+)(?:\.json)?", self._service),
            ("GET", r"/v1/Services/(?P<sid>[^/.]+)/PhoneNumbers", self._list_service_numbers),
        ]
        try:
            path_known = False
            for method, pattern, handler in routes:
                match = re.fullmatch(pattern, request.path)
                if not match:
                    continue
                path_known = True
                if method == request.method:
                    self._authenticate(authorization, match.groupdict().get("account"))
                    return handler(request, **match.groupdict())
            if path_known:
                raise TwilioError(405, 20004, "Method not allowed")
            raise TwilioError(404, 20404, f"The requested resource {request.path} was not found")
        except TwilioError as error:
            headers = (
                {"WWW-Authenticate": 'Basic realm="Twilio API"'} if error.status == 401 else {}
            )
            return _Reply(error.status, error.body(), headers)
        except Exception:  # noqa: BLE001 - a bug in the fake must show as a 500, not hang a test
            traceback.print_exc()
            return _Reply(500, TwilioError(500, 20500).body())

    def _authenticate(self, authorization: str | None, account: str | None) -> None:
        user, password = _basic_auth(authorization)
        known = {self.account_sid: self.auth_token, **self.api_keys}
        if user is None or known.get(user) != password:
            raise TwilioError(401, 20003)
        if account is not None and account != self.account_sid:
            raise TwilioError(401, 20003)  # valid credentials, someone else's account

    def _create_message(self, request: RecordedRequest, account: str) -> _Reply:
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault and fault.status:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            return _Reply(
                fault.status, TwilioError(fault.status, fault.code, fault.message).body(), headers
            )
        form = request.form
        with self._lock:
            validate_create(form, self._services)
            to = first(form, "To") or ""
            if to in self._rejections:
                raise self._rejections[to]
            message = self._store(self._new_message(form))
            outcome = self._auto_by_to.get(to, self._auto_default)
            if outcome and self._executor:
                future = self._executor.submit(self._deliver, message.sid, *outcome)
                self._pending.add(future)
                future.add_done_callback(self._pending.discard)
            body = message_json(self.account_sid, message)
        return _Reply(201, body, delay=fault.hang_seconds if fault else 0.0)

    def _new_message(self, form: Mapping[str, list[str]]) -> Message:
        media = tuple(form.get("MediaUrl", ()))
        body = first(form, "Body") or ""
        service = first(form, "MessagingServiceSid")
        moment = utc_now()
        return Message(
            sid=new_sid("MM" if media else "SM"),
            to=first(form, "To") or "",
            from_=first(form, "From"),
            body=body,
            media_urls=media,
            messaging_service_sid=service,
            status_callback=first(form, "StatusCallback"),
            # A Messaging Service first accepts, then picks a sender; a plain send is queued.
            status="accepted" if service else "queued",
            date_created=moment,
            date_sent=moment,
            date_updated=moment,
            num_segments=0 if service else count_segments(body),
            form={k: list(v) for k, v in form.items()},
        )

    def _store(self, message: Message) -> Message:
        self._seq += 1
        message.seq = self._seq
        self._messages[message.sid] = message
        return message

    def _message(self, sid: str) -> Message:
        try:
            return self._messages[sid]
        except KeyError:
            raise KeyError(f"no message {sid}") from None

    def _fetch_message(self, request: RecordedRequest, account: str, sid: str) -> _Reply:
        with self._lock:
            fault = self._fetch_faults.popleft() if self._fetch_faults else None
            if fault:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
                return _Reply(fault.status, TwilioError(fault.status, fault.code).body(), headers)
            if sid not in self._messages:
                raise TwilioError(
                    404, 20404, f"The requested resource {request.path} was not found"
                )
            return _Reply(200, message_json(self.account_sid, self._messages[sid]))

    def _list_messages(self, request: RecordedRequest, account: str) -> _Reply:
        query = {k: v[0] for k, v in request.query.items()}
        bounds = [
            (op, parse_date_filter(name, query[name]))
            for name, op in (("DateSent", "="), ("DateSent<", "<"), ("DateSent>", ">"))
            if name in query
        ]
        with self._lock:
            found = [
                m
                for m in self._messages.values()
                if query.get("To", m.to) == m.to
                and query.get("From", m.from_) == m.from_
                and all(matches_date(m.date_sent, op, bound) for op, bound in bounds)
            ]
            # Newest first, as Twilio lists them.
            found.sort(key=lambda m: (m.date_created, m.seq), reverse=True)
            rows = [message_json(self.account_sid, m) for m in found]
        filters = [
            (k, query[k])
            for k in ("To", "From", "DateSent", "DateSent<", "DateSent>")
            if k in query
        ]
        return _Reply(200, list_page(request.path, "messages", rows, filters, query))

    def _list_numbers(self, request: RecordedRequest, account: str) -> _Reply:
        query = {k: v[0] for k, v in request.query.items()}
        # Twilio matches partial numbers, with `*` for any one digit.
        wanted = re.escape(query.get("PhoneNumber", "")).replace(r"\*", r"\d")
        with self._lock:
            rows = [
                number_json(self.account_sid, n)
                for n in sorted(self._numbers.values(), key=lambda n: n.date_created)
                if re.search(wanted, n.phone_number)
            ]
        filters = [("PhoneNumber", query["PhoneNumber"])] if "PhoneNumber" in query else []
        return _Reply(200, list_page(request.path, "incoming_phone_numbers", rows, filters, query))

    def _number(self, request: RecordedRequest, account: str, sid: str) -> _Reply:
        """Fetch, or (POST) update the fields Twilio lets you set; unknown fields are ignored."""
        with self._lock:
            number = self._numbers.get(sid)
            if number is None:
                raise TwilioError(
                    404, 20404, f"The requested resource {request.path} was not found"
                )
            if request.method == "POST":
                check_urls(request.form, ("SmsUrl", "SmsFallbackUrl", "StatusCallback", "VoiceUrl"))
                for name, key in NUMBER_FIELDS.items():
                    if name in request.form:
                        number.fields[key] = request.form[name][0]
                number.date_updated = utc_now()
            return _Reply(200, number_json(self.account_sid, number))

    def _service(self, request: RecordedRequest, sid: str) -> _Reply:
        """Fetch, or (POST) update, a Messaging Service (messaging.twilio.com/v1)."""
        with self._lock:
            service = self._services.get(sid)
            if service is None:
                raise TwilioError(
                    404, 20404, f"The requested resource {request.path} was not found"
                )
            if request.method == "POST":
                check_urls(request.form, ("StatusCallback", "InboundRequestUrl", "FallbackUrl"))
                for name, key in SERVICE_FIELDS.items():
                    if name in request.form:
                        service.fields[key] = request.form[name][0]
                for name, key in SERVICE_FLAGS.items():
                    if name in request.form:
                        service.fields[key] = request.form[name][0].lower() == "true"
                service.date_updated = utc_now()
            return _Reply(200, service_json(self.account_sid, service))

    def _list_services(self, request: RecordedRequest) -> _Reply:
        query = {k: v[0] for k, v in request.query.items()}
        with self._lock:
            rows = [
                service_json(self.account_sid, s)
                for s in sorted(self._services.values(), key=lambda s: s.date_created)
            ]
        return _Reply(200, v1_list_page(request.path, "services", rows, query))

    def _list_service_numbers(self, request: RecordedRequest, sid: str) -> _Reply:
        """A service's sender pool; a number the account also holds keeps its PN sid."""
        query = {k: v[0] for k, v in request.query.items()}
        with self._lock:
            service = self._services.get(sid)
            if service is None:
                raise TwilioError(
                    404, 20404, f"The requested resource {request.path} was not found"
                )
            sids = {n.phone_number: n.sid for n in self._numbers.values()}
            rows = [
                service_number_json(
                    self.account_sid, service, sids.get(number) or _pool_sid(sid, number), number
                )
                for number in service.phone_numbers
            ]
        return _Reply(200, v1_list_page(request.path, "phone_numbers", rows, query))

    def _service_callback(self, message: Message) -> str | None:
        service = self._services.get(message.messaging_service_sid or "")
        return service.fields.get("status_callback") if service else None

    def _pick_sender(self, message: Message) -> str:
        service = self._services.get(message.messaging_service_sid or "")
        return service.phone_numbers[0] if service and service.phone_numbers else DEFAULT_SENDER

    def _deliver(self, sid: str, final: str, error_code: int | None) -> None:
        """auto_deliver's sequence for one message, in order, on a callback thread."""
        with self._lock:
            via_service = self._messages[sid].messaging_service_sid is not None
        steps = ["queued"] if via_service else []
        steps += [] if final == "failed" else ["sent"]
        for status in [*steps, final]:
            if self.stopping.is_set():
                return
            code = error_code if status == final else None
            # No callback URL anywhere: the status moves all the same, as on Twilio.
            with suppress(ValueError):
                self.send_status(sid, status, code)
