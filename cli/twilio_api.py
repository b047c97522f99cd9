"""The Twilio REST client for a command, and Twilio's errors as one line instead of a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import click
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from shared.config import ConfigError, Settings
from shared.twilio_client import make_twilio_client


def twilio_client(settings: Settings) -> Client:
    try:
        return make_twilio_client(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def describe(exc: TwilioException) -> str:
    """`Twilio error <code> (HTTP <status>): <message>` for whatever the SDK raised."""
    if isinstance(exc, TwilioRestException):
        code, status, message = exc.code, exc.status, exc.msg
    else:
        # A list page that is not a 200 arrives as TwilioException("Unable to fetch page",
        # response): the error document is in the response.
        response = exc.args[1] if len(exc.args) > 1 else None
        status = getattr(response, "status_code", None)
        try:
            doc = json.loads(getattr(response, "text", "") or "{}")
        except ValueError:
            doc = {}
        code = doc.get("code") if isinstance(doc, dict) else None
        message = doc.get("message") if isinstance(doc, dict) else None
        message = message or str(exc.args[0] if exc.args else exc)
    return f"Twilio error{f' {code}' if code else ''} (HTTP {status or '-'}): {message}"


@contextmanager
def twilio_errors(doing: str) -> Iterator[None]:
    """Turn a failed REST call into one line: `cannot <doing>: Twilio error 20404 (...)`."""
    try:
        yield
    except TwilioException as exc:
        raise click.ClickException(f"cannot {doing}: {describe(exc)}") from None
    except requests.RequestException as exc:
        raise click.ClickException(
            f"cannot {doing}: no answer from the Twilio API ({exc})"
        ) from None
