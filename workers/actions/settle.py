"""A resend whose create call never answered: find out from Twilio whether it was created.

Sending again blindly could deliver the message twice, so the rule is: list the messages Twilio
has to that number since the attempt began, and adopt the one that matches. Only when Twilio lists
none is the attempt recorded as `unknown`: never resent, left for a person to judge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from twilio.rest import Client

from shared.models import OutboundMessage

# Clocks differ between statuspipe and Twilio; a message created a little "before" the attempt
# still belongs to it.
CLOCK_SKEW = timedelta(minutes=2)
LIST_LIMIT = 100


def find_created(client: Client, row: OutboundMessage, known: Callable[[str], bool]) -> Any | None:
    """The message Twilio created for `row`, if any: same recipient, sender and body, created
    since the attempt began, and not a message statuspipe already knows under another record."""
    since = row.created_at - CLOCK_SKEW
    for message in client.messages.list(to=row.to, date_sent_after=since, limit=LIST_LIMIT):
        if known(message.sid):
            continue
        if (message.body or None) != (row.body or None):
            continue
        if row.from_ and message.from_ != row.from_:
            continue
        if row.messaging_service_sid and message.messaging_service_sid != row.messaging_service_sid:
            continue
        created = message.date_created
        if created is not None and created < since:
            continue
        return message
    return None
