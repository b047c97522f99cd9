"""`statuspipe send`: send a message through Twilio as `POST /api/messages` does.

The options become the API's JSON document and go through the same checks and the same send
(shared/send_request.py, shared/sending.py), so a message is the same whichever door it came in by.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import click
from sqlalchemy.exc import DBAPIError

from cli.database import first_line, open_database
from cli.errors import fail
from cli.settings import load

# The API's field -> the option that sets it, to name the option in an error.
OPTION_OF = {
    "to": "--to",
    "body": "--body",
    "from": "--from / --messaging-service",  # its one error: both or neither given
    "messaging_service_sid": "--messaging-service",
    "media_url": "--media-url",
    "force": "--force",
}
# Distinct exit codes, so a script can tell "fix the input" from "the recipient is blocked" from
# "Twilio said no" (1, click's default for every other error).
EXIT_INVALID = 2
EXIT_BLOCKED = 3


def send_document(
    to: str,
    body: str | None,
    from_: str | None,
    messaging_service: str | None,
    media_urls: tuple[str, ...],
    force: bool,
) -> dict[str, Any]:
    """The JSON body `POST /api/messages` would get for these options."""
    doc: dict[str, Any] = {"to": to, "force": force}
    optional = {"body": body, "from": from_, "messaging_service_sid": messaging_service}
    doc.update({name: value for name, value in optional.items() if value is not None})
    if media_urls:
        doc["media_url"] = list(media_urls)
    return doc


@click.command()
@click.option("--to", required=True, help="Recipient, E.164 (+15005550006) or whatsapp:+1...")
@click.option("--body", default=None, help="Message text (may be left out with --media-url).")
@click.option("--from", "from_", default=None, help="Sender: a Twilio number or sender ID.")
@click.option(
    "--messaging-service", default=None, help="Send through this Messaging Service (MG...)."
)
@click.option("--media-url", multiple=True, help="Media to attach (repeatable, up to 10).")
@click.option(
    "--force", is_flag=True, help="Send to a contact marked opted_out, landline or invalid."
)
def send(
    to: str,
    body: str | None,
    from_: str | None,
    messaging_service: str | None,
    media_url: tuple[str, ...],
    force: bool,
) -> None:
    """Send a message through Twilio with statuspipe's StatusCallback; print it as the API shows it.

    Exit status: 0 sent, 2 invalid input, 3 recipient blocked (see --force), 1 Twilio refused or
    any other error.
    """
    from cli.twilio_api import twilio_client
    from ingest.api.views import message_document
    from shared.db import make_sessionmaker
    from shared.send_request import InvalidSendRequest, parse_send_request
    from shared.sending import ContactBlocked, TwilioCallFailed, send_message

    try:
        req = parse_send_request(
            send_document(to, body, from_, messaging_service, media_url, force)
        )
    except InvalidSendRequest as exc:
        option = OPTION_OF.get(exc.field or "", exc.field or "input")
        raise fail(f"invalid {option}: {exc.message}", EXIT_INVALID) from None
    settings = load("database_url", "public_url")
    client = twilio_client(settings)
    sessions = make_sessionmaker(open_database(settings.database_url))
    # The outcome is this command's one line; without a handler, Python's last-resort one would
    # print the module's own warning about it to stderr as well.
    logging.getLogger("shared.sending").addHandler(logging.NullHandler())
    try:
        row = send_message(sessions, client, settings, req)
        with sessions() as session:
            doc = message_document(session, row.sid) if row.sid else None
    except ContactBlocked as exc:
        because = f" (Twilio error {exc.reason_code})" if exc.reason_code else ""
        raise fail(
            f"not sent: {req.to} is marked {exc.state}{because}; --force sends anyway",
            EXIT_BLOCKED,
        ) from None
    except TwilioCallFailed as failure:
        outcome = (
            "Twilio may have created the message (no answer)"
            if failure.sent is None
            else "not sent"
        )
        raise fail(f"{outcome}: {failure} (statuspipe id {failure.outbound_id})") from None
    except DBAPIError as exc:
        raise fail(f"database error: {first_line(exc)}") from None
    click.echo(json.dumps(doc or {"sid": row.sid, "id": row.id}, indent=2))
