"""Read a status callback off the WSGI environ: method, size and content-type checks, the form.

The first step of the endpoint: it returns either a CallbackRequest for the next steps or the
Outcome that ends the request (405, 413, 415, 400 for a body that is not UTF-8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingest.callback_outcome import Outcome
from shared.callback import parse_form

METHODS = ("GET", "HEAD", "POST")
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 64 * 1024

BAD_METHOD = Outcome(405, "bad_method", "use POST (or GET)", (("Allow", ", ".join(METHODS)),))
TOO_LARGE = Outcome(413, "too_large", f"body over {MAX_BODY_BYTES} bytes")
BAD_UTF8 = Outcome(400, "bad_utf8", "callback is not valid UTF-8")


class FormValues(dict[str, Any]):
    """Parsed form fields; `getall` lets RequestValidator sign repeated keys as Twilio does."""

    def getall(self, key: str) -> list[str]:
        value = self[key]
        return value if isinstance(value, list) else [value]


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which costs more
# per request than the fields are worth protecting.
@dataclass(slots=True)
class CallbackRequest:
    """One callback as read: `body` is the POST body (empty for GET), `query` the raw query
    string, `fields` the form (from the body of a POST, the query string of a GET)."""

    environ: dict[str, Any]
    method: str
    body: bytes
    query: bytes
    fields: FormValues


def read_callback(environ: dict[str, Any]) -> CallbackRequest | Outcome:
    method = environ.get("REQUEST_METHOD", "GET")
    query = environ.get("QUERY_STRING", "").encode("latin-1")
    if method == "POST":
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if mimetype != FORM_TYPE:
            text = f"expected {FORM_TYPE}, got {mimetype or 'no content type'}"
            return Outcome(415, "not_form", text)
        body = _read_body(environ)
        if body is None:
            return TOO_LARGE
        form = body
    elif method in METHODS:
        body = b""
        form = query
    else:
        return BAD_METHOD
    try:
        fields = FormValues(parse_form(form.decode("utf-8")))
    except UnicodeDecodeError:
        return BAD_UTF8
    return CallbackRequest(environ, method, body, query, fields)


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
