"""The one way statuspipe builds a Twilio REST client: `make_twilio_client(settings)`.

With `TWILIO_API_BASE_URL` set, every request the official client makes (api.twilio.com,
messaging.twilio.com, ...) goes to that base instead, path and query kept, so tests, `make run` and
the bench talk to a fake Twilio over real HTTP through the same code as production.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from shared.config import ConfigError, Settings

# What the SDK sees as its environment. It would otherwise read TWILIO_EDGE / TWILIO_REGION from
# os.environ behind shared/config.py's back and rewrite every host (api.dublin.ie1.twilio.com).
# Not `{}`: the SDK does `environment or os.environ`, so an empty mapping means os.environ.
_NO_ENVIRONMENT = {"TWILIO_EDGE": "", "TWILIO_REGION": ""}


class RedirectingHttpClient(TwilioHttpClient):
    """A TwilioHttpClient that sends every request to `base_url`, keeping path and query.

    Rewriting here, below the SDK, rather than each domain's `base_url`, covers every domain
    the client may reach, including ones created lazily after construction.
    """

    def __init__(self, base_url: str, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        parts = urlsplit(url)
        target = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().request(
            method, target, params, data, headers, auth, timeout, allow_redirects
        )


def make_twilio_client(settings: Settings) -> Client:
    """A twilio.rest.Client for the configured account; raises ConfigError naming a missing setting.

    Authenticates with the API key when `TWILIO_API_KEY_SID` is set (Twilio's recommendation
    for servers: revocable without rotating the auth token), else with the auth token. One REST
    call gives up after `TWILIO_TIMEOUT` seconds with requests' Timeout; the client does not
    retry (callers decide, since a timed-out create may still have created the message).
    """
    settings.require("twilio_account_sid")
    if settings.twilio_api_key_sid:
        settings.require("twilio_api_key_secret")
        username, password = settings.twilio_api_key_sid, settings.twilio_api_key_secret
    elif settings.twilio_api_key_secret:
        raise ConfigError("TWILIO_API_KEY_SECRET is set but TWILIO_API_KEY_SID is not")
    else:
        settings.require("twilio_auth_token")
        username, password = settings.twilio_account_sid, settings.twilio_auth_token
    timeout = settings.twilio_timeout_seconds
    http_client = (
        RedirectingHttpClient(settings.twilio_api_base_url, timeout=timeout)
        if settings.twilio_api_base_url
        else TwilioHttpClient(timeout=timeout)
    )
    return Client(
        username,
        password,
        account_sid=settings.twilio_account_sid,
        http_client=http_client,
        environment=_NO_ENVIRONMENT,
    )
