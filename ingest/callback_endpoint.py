"""POST/GET /twilio/status: validate, append the raw callback to Redis in one round trip, answer.

This is the one hot path of the ingress, so it is a plain WSGI callable mounted in front of the
Flask app (as middleware such as ProxyFix is): Flask's request context, routing and response
objects cost as much as the work itself (`make bench`, docs/benchmarks.md). Everything else (the
read API, probes) is ordinary Flask. Nothing here touches the database: the answer depends only
on Redis accepting the callback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import redis

from ingest.context import IngestContext
from shared.callback import missing_field_reason, parse_form
from shared.stream import BacklogFull

log = logging.getLogger(__name__)

PATH = "/twilio/status"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 64 * 1024

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class FormValues(dict[str, Any]):
    """Parsed form fields; `getall` lets RequestValidator sign repeated keys as Twilio does."""

    def getall(self, key: str) -> list[str]:
        value = self[key]
        return value if isinstance(value, list) else [value]


class CallbackEndpoint:
    """WSGI middleware: answers /twilio/status itself and passes every other path on."""

    def __init__(self, app: WsgiApp, ctx: IngestContext) -> None:
        self.app = app
        self.ctx = ctx

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self.app(environ, start_response)
        try:
            status, text, headers = self.handle(environ)
        except Exception:
            log.exception("unexpected error handling a callback")
            status, text, headers = 500, "internal error", []
        body = text.encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
             *headers],
        )  # fmt: skip
        return [body]

    def handle(self, environ: dict[str, Any]) -> tuple[int, str, list[tuple[str, str]]]:
        method = environ.get("REQUEST_METHOD", "GET")
        query = environ.get("QUERY_STRING", "").encode("latin-1")
        if method == "POST":
            mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
            if mimetype != FORM_TYPE:
                return 415, f"expected {FORM_TYPE}, got {mimetype or 'no content type'}", []
            body = _read_body(environ)
            if body is None:
                return 413, f"body over {MAX_BODY_BYTES} bytes", []
            form_bytes = body
        elif method in ("GET", "HEAD"):
            body = b""
            form_bytes = query
        else:
            return 405, "use POST (or GET)", [("Allow", "GET, HEAD, POST")]
        try:
            fields = FormValues(parse_form(form_bytes.decode("utf-8")))
        except UnicodeDecodeError:
            return 400, "callback is not valid UTF-8", []

        checker = self.ctx.signatures
        if checker is not None:
            url = checker.signed_url(environ)
            # Twilio signs a GET as the URL alone: its fields are already in the query string.
            signed_params = fields if method == "POST" else {}
            signature = environ.get("HTTP_X_TWILIO_SIGNATURE", "")
            if not checker.is_valid(url, signed_params, signature):
                if self.ctx.settings.signature_mode == "enforce":
                    log.warning(
                        "rejected callback with %s signature for %s",
                        "a wrong" if signature else "no",
                        url,
                    )
                    return 403, "invalid X-Twilio-Signature", []
                log.warning("accepting a callback with an invalid signature (log-only) for %s", url)

        reason = missing_field_reason(fields)
        if reason:
            return 400, reason, []

        try:
            self.ctx.enqueuer.enqueue(
                body=body,
                query=query,
                method="GET" if method == "HEAD" else method,
                token=environ.get("HTTP_I_TWILIO_IDEMPOTENCY_TOKEN", ""),
                received=time.time(),
            )
        except BacklogFull:
            log.warning("backlog over %d callbacks: answering 503", self.ctx.settings.max_backlog)
            retry = str(self.ctx.settings.retry_after_seconds)
            return 503, "backlog full, retry later", [("Retry-After", retry)]
        except redis.RedisError as exc:
            log.error("redis did not accept the callback (%s): answering 503", exc)
            return 503, "storage unavailable, retry later", [("Retry-After", "1")]
        return 200, "", []


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The request body, or None when it is over the limit (declared or actually sent)."""
    declared = environ.get("CONTENT_LENGTH") or ""
    if declared:
        try:
            length = int(declared)
        except ValueError:
            length = MAX_BODY_BYTES + 1
        if length > MAX_BODY_BYTES:
            return None
        return environ["wsgi.input"].read(length)
    # Chunked (no Content-Length): read one byte past the limit to tell.
    body = environ["wsgi.input"].read(MAX_BODY_BYTES + 1)
    return None if len(body) > MAX_BODY_BYTES else body
