"""Is a callback really from Twilio: the Verifier interface, and X-Twilio-Signature checked with
the official validator against the URL Twilio was given (auth-token signing)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Protocol
from urllib.parse import quote, urlsplit

from twilio.request_validator import RequestValidator

from ingest.callback_request import CallbackRequest

HMAC_SHA1 = "HMAC_SHA1"
DEFAULT_PORTS = {"http": 80, "https": 443}


class Verifier(Protocol):
    """One way of authenticating callbacks. The endpoint decides what a failure costs
    (SIGNATURE_MODE); a verifier only tells what was wrong."""

    def verify(self, request: CallbackRequest) -> str | None:
        """None when the callback is authentic, else what was wrong, for the log."""
        ...


class SignatureChecker:
    """Accepts a signature made with any of `secrets` (auth tokens: primary, or secondary while
    rotating; or one shared key) and `algorithm`, over the public URL as configured or the same
    URL with its port toggled.

    Twilio's official validators all accept both `https://host/...` and `https://host:443/...`
    (and a URL without an explicit non-default port), because Twilio's signing is inconsistent
    about the port. Trying every form for every request doubles the cost, so the configured form
    comes first and the other is computed only when it fails: a genuine callback costs one HMAC.
    """

    def __init__(self, public_url: str, secrets: Iterable[str], algorithm: str = HMAC_SHA1) -> None:
        self.public_url, self.other_url = url_forms(public_url)
        self.validators = [RequestValidator(s) for s in secrets]
        self.algorithm = algorithm

    def signed_url(self, environ: Mapping[str, str]) -> str:
        return self.public_url + raw_path_and_query(environ)

    def verify(self, request: CallbackRequest) -> str | None:
        path = raw_path_and_query(request.environ)
        # Twilio signs a GET as the URL alone: its fields are already in the query string.
        params = request.fields if request.method == "POST" else {}
        signature = request.environ.get("HTTP_X_TWILIO_SIGNATURE", "")
        if self.is_valid(self.public_url + path, params, signature):
            return None
        if signature and self.is_valid(self.other_url + path, params, signature):
            return None
        return f"{'a wrong' if signature else 'no'} signature for {self.public_url + path}"

    def is_valid(self, url: str, params: Mapping[str, object], signature: str) -> bool:
        if not signature:
            return False
        # Compare bytes: compare_digest refuses non-ASCII str, and a hostile header must be a
        # 403, not a 500.
        given = signature.encode("utf-8", "surrogateescape")
        for validator in self.validators:
            try:
                expected = validator.compute_signature(url, params, self.algorithm)
            except UnicodeEncodeError:
                # A path that is not UTF-8 (kept as surrogates): Twilio signs text, so no
                # signature can match it.
                return False
            if hmac.compare_digest(expected.encode("ascii"), given):
                return True
        return False


def url_forms(public_url: str) -> tuple[str, str]:
    """PUBLIC_URL as Twilio signs it, and the same with its port toggled: the default port added
    when it has none, its port removed when it has one (what every official validator tries).

    Credentials are dropped: Twilio removes `user:pass@` from a callback URL before signing it
    (its security notes; README "Basic authentication of Twilio")."""
    parts = urlsplit(public_url.rstrip("/"))
    host = parts.netloc.rpartition("@")[2]
    hostname, port = _split_port(host)
    signed = f"{parts.scheme}://{host}{parts.path}"
    if port:
        other = f"{parts.scheme}://{hostname}{parts.path}"
    else:
        other = f"{parts.scheme}://{host}:{DEFAULT_PORTS.get(parts.scheme, 443)}{parts.path}"
    return signed, other


def _split_port(host: str) -> tuple[str, str]:
    """("host", "8443") from "host:8443"; an IPv6 literal keeps its brackets."""
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and not name.endswith(":"):
        return name, port
    return host, ""


def raw_path_and_query(environ: Mapping[str, str]) -> str:
    """Path and query string exactly as the client sent them, as the text Twilio signed.

    Frameworks that rebuild the URL (decoding %-escapes, reordering the query) break the HMAC,
    so prefer the server's raw request line (gunicorn: RAW_URI, others: REQUEST_URI). WSGI hands
    it over as latin-1 text; Twilio signed the UTF-8 text, so non-ASCII bytes are decoded as
    UTF-8 (invalid ones kept as surrogates, which then match no signature).
    """
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        if "://" in raw:  # absolute-form request target from a forward proxy
            raw = "/" + raw.split("://", 1)[1].partition("/")[2]
        raw = raw.split("#", 1)[0]
        if raw.isascii():
            return raw
        return raw.encode("latin-1", "replace").decode("utf-8", "surrogateescape")
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    if not path.isascii():
        path = path.encode("latin-1", "replace").decode("utf-8", "surrogateescape")
    path = quote(path, safe="/:@!$&'()*+,;=-._~", errors="surrogateescape")
    query = environ.get("QUERY_STRING", "")
    if not query.isascii():
        query = query.encode("latin-1", "replace").decode("utf-8", "surrogateescape")
    return f"{path}?{query}" if query else path
