"""A fake Twilio REST API over real HTTP, for tests, `make run` and the bench.

Production code reaches it only through the official `twilio` package, pointed here by
`TWILIO_API_BASE_URL` (shared/twilio_client.py), so what is tested is the real client's requests.

    with FakeTwilio(routes={"https://hooks.example.com": listener_base}) as fake:
        settings = load_settings({..., "TWILIO_API_BASE_URL": fake.base_url})
        make_twilio_client(settings).messages.create(to=..., from_=..., body=...)
        fake.send_status(fake.created[0].sid, "delivered")   # signed callback, as Twilio sends it

Served: create / list / fetch Messages, list / fetch / update IncomingPhoneNumbers (account API),
list / fetch / update Messaging Services and list a service's PhoneNumbers
(messaging.twilio.com/v1). Modules: `resources` (shapes, the
create checks, paging), `callbacks` (form, signature, retries), `server` (FakeTwilio and its
control API), `__main__` (`python -m devtools.fake_twilio --port 8099 [--auto-deliver]
[--route PUBLIC=ACTUAL]`).
"""

from devtools.fake_twilio.callbacks import SentCallback
from devtools.fake_twilio.resources import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_SENDER,
    Message,
    MessagingService,
    PhoneNumber,
    RecordedRequest,
    TwilioError,
    count_segments,
)
from devtools.fake_twilio.server import FakeTwilio

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_SENDER",
    "FakeTwilio",
    "Message",
    "MessagingService",
    "PhoneNumber",
    "RecordedRequest",
    "SentCallback",
    "TwilioError",
    "count_segments",
]
