import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from devtools.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio
from shared.config import ConfigError, load_settings
from shared.twilio_client import make_twilio_client

API_KEY = "SK" + "5" * 32
API_SECRET = "api-key-secret"


@pytest.fixture
def fake():
    with FakeTwilio(api_keys={API_KEY: API_SECRET}) as running:
        yield running


def settings_for(fake, **env):
    return load_settings(
        {
            "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
            "TWILIO_API_BASE_URL": fake.base_url,
            **env,
        }
    )


def test_api_calls_reach_the_base_url_with_path_and_auth_token(fake):
    client = make_twilio_client(settings_for(fake))
    client.messages.create(to="+15005550010", from_="+15005550006", body="hi")
    [request] = fake.requests
    assert request.path == f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"
    assert request.username == DEFAULT_ACCOUNT_SID


def test_query_strings_survive_the_redirect(fake):
    client = make_twilio_client(settings_for(fake))
    client.messages.list(to="+15005550010", page_size=7)
    [request] = fake.requests
    assert request.query == {"To": ["+15005550010"], "PageSize": ["7"]}


def test_api_key_is_used_instead_of_the_auth_token_when_set(fake):
    settings = settings_for(
        fake, TWILIO_AUTH_TOKEN="", TWILIO_API_KEY_SID=API_KEY, TWILIO_API_KEY_SECRET=API_SECRET
    )
    make_twilio_client(settings).messages.create(to="+15005550010", from_="+15005550006", body="x")
    assert fake.requests[0].username == API_KEY
    assert fake.requests[0].path.startswith(f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/")


def test_wrong_credentials_come_back_as_twilio_20003(fake):
    client = make_twilio_client(settings_for(fake, TWILIO_AUTH_TOKEN="not-the-token"))
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="+15005550010", from_="+15005550006", body="x")
    assert (err.value.status, err.value.code) == (401, 20003)


def test_the_messaging_domain_is_redirected_too(fake):
    service = fake.add_messaging_service()
    client = make_twilio_client(settings_for(fake))
    updated = client.messaging.v1.services(service).update(
        status_callback="https://hooks.example.com/twilio/status"
    )
    assert updated.status_callback == "https://hooks.example.com/twilio/status"
    assert fake.requests[0].path == f"/v1/Services/{service}"


def test_a_slow_twilio_raises_a_timeout_from_the_client(fake):
    fake.hang_next_creates(seconds=5)
    client = make_twilio_client(settings_for(fake, TWILIO_TIMEOUT="0.2"))
    with pytest.raises(requests.exceptions.Timeout):
        client.messages.create(to="+15005550010", from_="+15005550006", body="x")
    # Twilio may have created it all the same: why a resend must reconcile first.
    assert [m.to for m in fake.created] == ["+15005550010"]


def test_edge_and_region_in_the_environment_are_ignored(fake, monkeypatch):
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    client = make_twilio_client(settings_for(fake))
    assert client.get_hostname("https://api.twilio.com/x") == "https://api.twilio.com/x"
    client.messages.create(to="+15005550010", from_="+15005550006", body="hi")
    assert len(fake.created) == 1


def test_without_a_base_url_the_client_talks_to_twilio_itself():
    settings = load_settings({"TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": "t"})
    client = make_twilio_client(settings)
    assert type(client.http_client).__name__ == "TwilioHttpClient"
    assert client.http_client.timeout == 10.0
    assert client.api.base_url == "https://api.twilio.com"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TWILIO_AUTH_TOKEN": "t"}, "TWILIO_ACCOUNT_SID is required"),
        ({"TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID}, "TWILIO_AUTH_TOKEN is required"),
        (
            {"TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID, "TWILIO_API_KEY_SID": API_KEY},
            "TWILIO_API_KEY_SECRET is required",
        ),
        (
            {"TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID, "TWILIO_API_KEY_SECRET": "s"},
            "TWILIO_API_KEY_SID is not",
        ),
    ],
)
def test_missing_credentials_are_named(env, message):
    with pytest.raises(ConfigError, match=message):
        make_twilio_client(load_settings(env))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://127.0.0.1:8099", "http://127.0.0.1:8099"),
        ("http://127.0.0.1:8099/", "http://127.0.0.1:8099"),
        ("https://twilio-proxy.internal", "https://twilio-proxy.internal"),
        ("127.0.0.1:8099", None),
        ("ftp://127.0.0.1", None),
        ("http://127.0.0.1:8099/2010-04-01", None),
    ],
)
def test_base_url_is_scheme_and_host_only(raw, expected):
    if expected is None:
        with pytest.raises(ConfigError, match="TWILIO_API_BASE_URL"):
            load_settings({"TWILIO_API_BASE_URL": raw})
    else:
        assert load_settings({"TWILIO_API_BASE_URL": raw}).twilio_api_base_url == expected


@pytest.mark.parametrize("raw", ["0", "soon"])
def test_timeout_must_be_a_positive_number(raw):
    with pytest.raises(ConfigError, match="TWILIO_TIMEOUT"):
        load_settings({"TWILIO_TIMEOUT": raw})
