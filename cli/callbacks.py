"""`statuspipe configure-callback`: point a Messaging Service's StatusCallback at statuspipe,
after checking, as the Console's Test Webhook would, that the ingress there accepts a signed one.

Twilio sets a message's status callback on the message or on its Messaging Service; a phone
number's StatusCallback is for calls. So `--phone-number` configures the services whose sender
pool holds the number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cli.errors import fail
from cli.settings import load
from shared.send_request import CALLBACK_PATH, E164_RE, MESSAGING_SERVICE_RE

if TYPE_CHECKING:
    from twilio.rest import Client

    from shared.config import Settings

# Twilio gives a callback 15 s in all (reference §3.1); an ingress slower than that fails anyway.
SAMPLE_TIMEOUT = 15
# What an answer other than 200 usually means, for the refusal line.
HINTS = {
    403: "the ingress checks signatures with another TWILIO_AUTH_TOKEN or PUBLIC_URL",
    404: "nothing serves the callback path there",
    503: "the ingress cannot store callbacks (Redis down or backlog full)",
}
NO_SERVICE = (
    "no Messaging Service has {number} in its sender pool; Twilio sets message status callbacks"
    " per Messaging Service or per message (a number's StatusCallback is for calls): add the"
    " number to a Messaging Service and configure that with --messaging-service, or send with"
    " `statuspipe send`, which sets it on each message"
)


def service_callback_url(public_url: str, overrides: str) -> str:
    """statuspipe's callback for every message of a service: no id in the query (statuspipe did
    not send those messages), Twilio's connection overrides in the fragment."""
    url = f"{public_url.rstrip('/')}{CALLBACK_PATH}"
    return f"{url}#{overrides}" if overrides else url


def check_answers(url: str, settings: Settings, service_sid: str) -> str:
    """Post a callback signed as Twilio would sign it for `url` (fragment removed) and return its
    MessageSid; raise the one-line refusal unless the answer is 200."""
    from cli.sample_callback import random_message_sid, send, status_form

    sid = random_message_sid()
    fields = status_form(
        sid, "sent", AccountSid=settings.twilio_account_sid, MessagingServiceSid=service_sid
    )
    target = url.split("#", 1)[0]
    try:
        status, body = send(url, fields, settings.twilio_auth_token, timeout=SAMPLE_TIMEOUT)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise fail(
            f"not configured: a sample callback to {target} got no answer ({reason})"
        ) from None
    if status != 200:
        answer = " ".join(f"{status} {body}".split())[:200]
        hint = f" ({HINTS[status]})" if status in HINTS else ""
        raise fail(f"not configured: a signed sample callback to {target} answered {answer}{hint}")
    return sid


def services_holding(client: Client, number: str) -> list[Any]:
    """The Messaging Services whose sender pool holds `number`."""
    from cli.twilio_api import twilio_errors

    found = []
    with twilio_errors("list the Messaging Services and their phone numbers"):
        for service in client.messaging.v1.services.stream():
            pool = client.messaging.v1.services(service.sid).phone_numbers.stream()
            if any(entry.phone_number == number for entry in pool):
                found.append(service)
    return found


@click.command("configure-callback")
@click.option("--messaging-service", default=None, help="The Messaging Service (MG...) to set.")
@click.option(
    "--phone-number",
    default=None,
    help="Set it on the Messaging Service(s) whose sender pool holds this number (+1...).",
)
def configure_callback(messaging_service: str | None, phone_number: str | None) -> None:
    """Set a Messaging Service's StatusCallback to PUBLIC_URL/twilio/status (with
    CALLBACK_CONNECTION_OVERRIDES), once a signed sample callback sent there answered 200."""
    from cli.twilio_api import twilio_client, twilio_errors

    if bool(messaging_service) == bool(phone_number):
        raise fail("give exactly one of --messaging-service and --phone-number", 2)
    if messaging_service and not MESSAGING_SERVICE_RE.match(messaging_service):
        raise fail("invalid --messaging-service: MG followed by 32 hex characters", 2)
    if phone_number and not E164_RE.match(phone_number):
        raise fail(f"invalid --phone-number: not an E.164 number: {phone_number!r}", 2)
    settings = load("public_url", "twilio_auth_token", "twilio_account_sid")
    client = twilio_client(settings)
    if messaging_service:
        with twilio_errors(f"fetch the Messaging Service {messaging_service}"):
            services = [client.messaging.v1.services(messaging_service).fetch()]
    else:
        services = services_holding(client, phone_number or "")
        if not services:
            raise fail(NO_SERVICE.format(number=phone_number))
        sids = ", ".join(service.sid for service in services)
        click.echo(f"{phone_number} is in the sender pool of {sids}")
    url = service_callback_url(settings.public_url, settings.callback_overrides)
    sample = check_answers(url, settings, services[0].sid)
    click.echo(f"a signed sample callback ({sample}, status sent) to {url} answered 200")
    for service in services:
        with twilio_errors(f"update the Messaging Service {service.sid}"):
            updated = client.messaging.v1.services(service.sid).update(status_callback=url)
        click.echo(
            f"{service.sid} ({service.friendly_name}): StatusCallback {updated.status_callback}"
            f" (was {service.status_callback or 'not set'})"
        )
