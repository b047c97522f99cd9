"""POST/GET /twilio/status: read form -> verify -> validate -> enqueue -> answer.

This is the one hot path of the ingress, so it is a plain WSGI callable mounted in front of the
Flask app (as middleware such as ProxyFix is): Flask's request context, routing and response
objects cost as much as the work itself (`make bench`, docs/benchmarks.md). Everything else (the
read API, probes) is ordinary Flask. Nothing here touches the database: the answer depends only
on Redis accepting the callback.

Each step either hands the next one its input or ends the request with an Outcome
(ingest/callback_outcome.py); `__call__` sees every Outcome, whichever step produced it, and
counts it by its reason (ingest/metrics/ingress.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import redis

from ingest.basic_auth import UNAUTHORIZED
from ingest.callback_outcome import ACCEPTED, INTERNAL_ERROR, Outcome
from ingest.callback_request import METHODS, CallbackRequest, read_callback
from ingest.context import IngestContext
from ingest.metrics.ingress import IngressMetrics
from shared.callback import missing_field_reason
from shared.stream import BacklogFull

log = logging.getLogger(__name__)

PATH = "/twilio/status"

BAD_SIGNATURE = Outcome(403, "bad_signature", "invalid X-Twilio-Signature")
REDIS_UNAVAILABLE = Outcome(
    503, "redis_unavailable", "storage unavailable, retry later", (("Retry-After", "1"),)
)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class CallbackEndpoint:
    """WSGI middleware: answers /twilio/status itself and passes every other path on."""

    # Not in Flask's url_map: exposed so that the list of routes the app answers is complete.
    PATH = PATH
    METHODS = METHODS

    def __init__(self, app: WsgiApp, ctx: IngestContext) -> None:
        self.app = app
        self.ctx = ctx
        self.metrics = IngressMetrics()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.app(environ, start_response)
        try:
            outcome = self.handle(environ)
        except Exception:
            log.exception("unexpected error handling a callback")
            outcome = INTERNAL_ERROR
        self.metrics.answered(outcome.reason)
        return _answer(outcome, start_response)

    def handle(self, environ: dict[str, Any]) -> Outcome:
        request = read_callback(environ)
        if isinstance(request, Outcome):
            return request
        rejection = self._authenticate(request) or self._verify(request) or _validate(request)
        return rejection or self._enqueue(request)

    def _authenticate(self, request: CallbackRequest) -> Outcome | None:
        basic_auth = self.ctx.basic_auth
        if basic_auth is None or basic_auth.allows(request.environ):
            return None
        if request.environ.get("HTTP_AUTHORIZATION"):
            log.warning("rejected callback with wrong Basic credentials")
        return UNAUTHORIZED

    def _verify(self, request: CallbackRequest) -> Outcome | None:
        verifier = self.ctx.verifier
        if verifier is None:
            return None
        problem = verifier.verify(request)
        if problem is None:
            return None
        if self.ctx.settings.signature_mode == "enforce":
            log.warning("rejected callback with %s", problem)
            return BAD_SIGNATURE
        log.warning("accepting a callback with %s (log-only)", problem)
        return None

    def _enqueue(self, request: CallbackRequest) -> Outcome:
        started = time.perf_counter()
        try:
            self.ctx.enqueuer.enqueue(
                body=request.body,
                query=request.query,
                method="GET" if request.method == "HEAD" else request.method,
                token=request.environ.get("HTTP_I_TWILIO_IDEMPOTENCY_TOKEN", ""),
                received=time.time(),
                sid=request.fields["MessageSid"],  # validated: one valid sid, one status
                status=request.fields["MessageStatus"],
            )
        except BacklogFull:
            settings = self.ctx.settings
            log.warning("backlog over %d callbacks: answering 503", settings.max_backlog)
            retry = (("Retry-After", str(settings.retry_after_seconds)),)
            return Outcome(503, "backlog_full", "backlog full, retry later", retry)
        except redis.RedisError as exc:
            log.error("redis did not accept the callback (%s): answering 503", exc)
            return REDIS_UNAVAILABLE
        finally:
            self.metrics.enqueued(time.perf_counter() - started)
        return ACCEPTED


def _validate(request: CallbackRequest) -> Outcome | None:
    reason = missing_field_reason(request.fields)
    return Outcome(400, "missing_field", reason) if reason else None


def _answer(outcome: Outcome, start_response: StartResponse) -> list[bytes]:
    body = outcome.text.encode()
    start_response(
        _STATUS_LINES[outcome.status],
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
         *outcome.headers],
    )  # fmt: skip
    return [body]
