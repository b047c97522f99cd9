"""Send one message through Twilio: statuspipe's own record first, then the REST call, then the sid.

Used by `POST /api/messages`, `statuspipe send` and the resends of the actions role. The record
is committed before Twilio is called, so its id can travel in the StatusCallback URL and a
callback that beats the REST answer is still matched to it; and so a call whose answer never
came (a timeout) leaves a trace to settle instead of a message nobody knows about.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from shared.config import Settings
from shared.db import session_scope
from shared.logs import mask_number
from shared.models import Contact, MessageEvent, OutboundMessage
from shared.send_request import SendRequest, outbound_id_from_query, status_callback_url

log = logging.getLogger(__name__)

# Contacts in these states are not sent to unless the caller insists (`force`): Twilio would
# refuse (opted out: 21610) or bill a message that cannot arrive (landline, invalid number).
BLOCKING_STATES = frozenset({"opted_out", "landline", "invalid"})


class ContactBlocked(Exception):  # noqa: N818 - reads better at the raise site
    """The recipient is marked opted_out, landline or invalid: a 409 unless forced."""

    def __init__(self, contact: Contact) -> None:
        super().__init__(
            f"{contact.number} is marked {contact.state}"
            + (f" (Twilio error {contact.reason_code})" if contact.reason_code else "")
            + '; send with "force": true to send anyway'
        )
        self.state = contact.state
        self.reason_code = contact.reason_code


@dataclass
class TwilioCallFailed(Exception):  # noqa: N818 - reads better at the raise site
    """Twilio refused the message, or its answer never came.

    `sent` tells what is known: False (Twilio answered an error or was never reached, so
    nothing was created), None (the call timed out: Twilio may have created the message)."""

    outbound_id: int
    http_status: int | None
    code: int | None
    message: str
    sent: bool | None

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        return f"Twilio error{code} (HTTP {self.http_status or '-'}): {self.message}"

    @property
    def transient(self) -> bool:
        """Safe and sensible to try again: Twilio did not process it (429) or failed (5xx)."""
        return self.sent is False and (
            self.http_status is None or self.http_status == 429 or self.http_status >= 500
        )


def outbound_for_message(session: Session, sid: str) -> OutboundMessage | None:
    """statuspipe's record of the message `sid`, if statuspipe sent it: by the sid Twilio
    returned or, when that answer never came (a timeout) or has not been stored yet, by the id
    the message's callbacks carry in their URL."""
    found = session.scalars(select(OutboundMessage).where(OutboundMessage.sid == sid)).first()
    if found is not None:
        return found
    queries = session.scalars(
        select(MessageEvent.url_query).where(
            MessageEvent.message_sid == sid, MessageEvent.url_query.is_not(None)
        )
    )
    for query in queries:
        outbound_id = outbound_id_from_query(query)
        if outbound_id is not None:
            return session.get(OutboundMessage, outbound_id)
    return None


def blocking_contact(session: Session, number: str) -> Contact | None:
    contact = session.get(Contact, number)
    return contact if contact is not None and contact.state in BLOCKING_STATES else None


def store_outbound(
    session: Session, req: SendRequest, attempt: int = 1, original_id: int | None = None
) -> OutboundMessage:
    """Insert statuspipe's record of a send (pending) and give it its id; the caller commits."""
    row = OutboundMessage(
        to=req.to,
        from_=req.from_,
        messaging_service_sid=req.messaging_service_sid,
        body=req.body,
        media_urls=list(req.media_urls),
        attempt=attempt,
        original_id=original_id,
        send_state="pending",
    )
    session.add(row)
    session.flush()
    return row


def store_resend(session: Session, failed: OutboundMessage) -> OutboundMessage:
    """The record of the next send of `failed`'s message: same recipient, sender, body and media,
    one attempt further, in `failed`'s chain. The caller commits."""
    request = SendRequest(
        to=failed.to,
        body=failed.body,
        from_=failed.from_,
        messaging_service_sid=failed.messaging_service_sid,
        media_urls=tuple(failed.media_urls),
    )
    return store_outbound(
        session, request, attempt=failed.attempt + 1, original_id=failed.original_id or failed.id
    )


def create_on_twilio(client: Client, settings: Settings, row: OutboundMessage) -> Any:
    """The one `messages.create` call. Raises TwilioCallFailed; returns the MessageInstance."""
    kwargs: dict[str, Any] = {
        "to": row.to,
        "status_callback": status_callback_url(
            settings.public_url, row.id, settings.callback_overrides
        ),
        "attempt": row.attempt,
    }
    if row.from_:
        kwargs["from_"] = row.from_
    if row.messaging_service_sid:
        kwargs["messaging_service_sid"] = row.messaging_service_sid
    if row.body:
        kwargs["body"] = row.body
    if row.media_urls:
        kwargs["media_url"] = list(row.media_urls)
    try:
        return client.messages.create(**kwargs)
    except TwilioRestException as exc:
        raise TwilioCallFailed(row.id, exc.status, exc.code, exc.msg, False) from exc
    except requests.exceptions.ConnectTimeout as exc:
        # Never connected: nothing reached Twilio.
        raise TwilioCallFailed(row.id, None, None, f"could not connect: {exc}", False) from exc
    except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
        # The request may have arrived: Twilio may have created the message.
        raise TwilioCallFailed(row.id, None, None, f"no answer from Twilio: {exc}", None) from exc


def record_created(session: Session, outbound_id: int, instance: Any) -> None:
    session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == outbound_id)
        .values(
            sid=instance.sid,
            send_state="created",
            initial_status=str(instance.status) if instance.status is not None else None,
            updated_at=datetime.now(UTC),
        )
    )


def record_failed(session: Session, failure: TwilioCallFailed) -> None:
    session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == failure.outbound_id)
        .values(
            send_state="unknown" if failure.sent is None else "rejected",
            error_code=failure.code,
            error_message=failure.message[:1000],
            updated_at=datetime.now(UTC),
        )
    )


def send_message(
    sessions: sessionmaker[Session], client: Client, settings: Settings, req: SendRequest
) -> OutboundMessage:
    """Send a new message (attempt 1). Raises ContactBlocked (nothing stored, nothing sent) or
    TwilioCallFailed (the record keeps the outcome). Returns the stored record."""
    with session_scope(sessions) as session:
        if not req.force and (contact := blocking_contact(session, req.to)) is not None:
            raise ContactBlocked(contact)
        row = store_outbound(session, req)
    try:
        instance = create_on_twilio(client, settings, row)
    except TwilioCallFailed as failure:
        with session_scope(sessions) as session:
            record_failed(session, failure)
        log.warning("send %d to %s failed: %s", row.id, mask_number(row.to), failure)
        raise
    with session_scope(sessions) as session:
        record_created(session, row.id, instance)
        stored = session.scalars(select(OutboundMessage).where(OutboundMessage.id == row.id)).one()
    log.info("sent %d to %s as %s", stored.id, mask_number(stored.to), stored.sid)
    return stored
