"""CALLBACK_BASIC_AUTH: Twilio's challenge-then-credentials, checked before the signature, and
the signature over the URL without `user:pass@` (what Twilio signs)."""

from base64 import b64encode

import pytest

from tests.twilio_fixtures import AUTH_TOKEN, callback_fields, new_sid, signed_post
from tests.unit.ingest.ingress_client import PUBLIC, STREAM, make_app

USER, PASSWORD = "twilio", "s3cret-pass"


def basic(user: str, password: str) -> str:
    return "Basic " + b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def app():
    return make_app(CALLBACK_BASIC_AUTH=f"{USER}:{PASSWORD}")


def signed(url=PUBLIC + "/twilio/status"):
    return signed_post(url, callback_fields(new_sid(), "delivered"), AUTH_TOKEN)


def test_twilio_first_call_gets_a_challenge_then_the_credentials_are_accepted(app):
    flask_app, redis = app
    client = flask_app.test_client()
    body, headers = signed()
    first = client.post("/twilio/status", data=body, headers=headers)
    assert first.status_code == 401
    assert first.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert redis.xlen(STREAM) == 0
    again = client.post("/twilio/status", data=body,
                        headers={**headers, "Authorization": basic(USER, PASSWORD)})  # fmt: skip
    assert again.status_code == 200
    assert redis.xlen(STREAM) == 1


@pytest.mark.parametrize(
    "authorization",
    [
        basic(USER, "wrong"),
        basic("other", PASSWORD),
        basic(USER, PASSWORD + "x"),
        "Basic !!!not-base64!!!",
        "Basic " + b64encode(b"twilio").decode(),
        "Bearer " + b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
        "Basic ünïcödé",
        "Basic",
    ],
)
def test_wrong_credentials_are_401_even_with_a_valid_signature(app, authorization):
    flask_app, redis = app
    body, headers = signed()
    resp = flask_app.test_client().post(
        "/twilio/status", data=body, headers={**headers, "Authorization": authorization}
    )
    assert resp.status_code == 401
    assert "WWW-Authenticate" in resp.headers
    assert redis.xlen(STREAM) == 0


def test_the_right_credentials_do_not_excuse_a_bad_signature(app):
    flask_app, redis = app
    body, headers = signed()
    headers["X-Twilio-Signature"] = "bogus"
    resp = flask_app.test_client().post(
        "/twilio/status", data=body, headers={**headers, "Authorization": basic(USER, PASSWORD)}
    )
    assert resp.status_code == 403
    assert redis.xlen(STREAM) == 0


def test_what_twilio_signs_is_the_url_without_credentials(app):
    """Twilio drops user:pass@ from the URL before signing (its security notes); a signature
    over the URL with them is not Twilio's and is refused."""
    flask_app, _ = app
    client = flask_app.test_client()
    creds = {"Authorization": basic(USER, PASSWORD)}
    body, headers = signed(f"https://{USER}:{PASSWORD}@hooks.example.com/twilio/status")
    assert client.post("/twilio/status", data=body, headers={**headers, **creds}).status_code == 403
    body, headers = signed()
    assert client.post("/twilio/status", data=body, headers={**headers, **creds}).status_code == 200


def test_credentials_in_public_url_are_not_signed_either():
    flask_app, _ = make_app(
        CALLBACK_BASIC_AUTH=f"{USER}:{PASSWORD}",
        PUBLIC_URL=f"https://{USER}:{PASSWORD}@hooks.example.com",
    )
    body, headers = signed()
    resp = flask_app.test_client().post(
        "/twilio/status", data=body, headers={**headers, "Authorization": basic(USER, PASSWORD)}
    )
    assert resp.status_code == 200


def test_without_the_setting_no_credentials_are_asked(capsys):
    flask_app, _ = make_app()
    body, headers = signed()
    assert (
        flask_app.test_client().post("/twilio/status", data=body, headers=headers).status_code
        == 200
    )
