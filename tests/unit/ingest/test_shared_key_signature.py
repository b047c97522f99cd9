"""Shared-key signatures (X-Twilio-Webhooks-Signature-Settings) through the whole endpoint."""

import logging
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from ingest.shared_key_signature import settings_key_id
from tests.twilio_fixtures import AUTH_TOKEN, FORM, callback_fields, new_sid
from tests.unit.ingest.ingress_client import PUBLIC, STREAM, make_app

URL = PUBLIC + "/twilio/status"
KEYS = "key_old=old-shared-secret-0001,key_new=new-shared-secret-0002"
SECRETS = ("old-shared-secret-0001", "new-shared-secret-0002", AUTH_TOKEN)
FIELDS = {"MessageSid": "SM" + "ab" * 16, "MessageStatus": "delivered", "To": "+15005550006"}
# RequestValidator("new-shared-secret-0002").compute_signature(URL, FIELDS, "HMAC_SHA256"), and
# over https://hooks.example.com:443/twilio/status:
VECTOR_SHA256 = "VC8oD2yYzLw/FigX2duGHHV5RGE+VR+jQgopqiHkpaU="
VECTOR_SHA256_443 = "rJZXciouJZj/QNT1GvbRq1W/CJSAJR2FwNrOSPaX6nU="


def post(client, fields, signature, settings_header=None, url=URL):
    headers = {"Content-Type": FORM, "X-Twilio-Signature": signature}
    if settings_header is not None:
        headers["X-Twilio-Webhooks-Signature-Settings"] = settings_header
    return client.post(url[len(PUBLIC) :], data=urlencode(fields), headers=headers)


def shared_sig(secret, fields, algorithm, url=URL):
    return RequestValidator(secret).compute_signature(url, fields, algorithm)


@pytest.fixture
def app():
    return make_app(TWILIO_SHARED_KEYS=KEYS)


def test_vectors():
    new = "new-shared-secret-0002"
    assert shared_sig(new, FIELDS, "HMAC_SHA256") == VECTOR_SHA256
    assert shared_sig(new, FIELDS, "HMAC_SHA256", PUBLIC + ":443/twilio/status") == (
        VECTOR_SHA256_443
    )


@pytest.mark.parametrize("signature", [VECTOR_SHA256, VECTOR_SHA256_443])
def test_published_style_vector_is_accepted_with_or_without_port(app, signature):
    flask_app, redis = app
    resp = post(flask_app.test_client(), FIELDS, signature, "key=key_new,algorithm=HMAC_SHA256")
    assert resp.status_code == 200
    assert redis.xlen(STREAM) == 1


@pytest.mark.parametrize("key_id", ["key_old", "key_new"])
@pytest.mark.parametrize("algorithm", ["HMAC_SHA256", "HMAC_SHA1"])
def test_either_key_of_a_rotation_with_either_algorithm(app, key_id, algorithm):
    flask_app, redis = app
    secret = dict(p.split("=") for p in KEYS.split(","))[key_id]
    fields = callback_fields(new_sid(), "sent")
    sig = shared_sig(secret, fields, algorithm)
    resp = post(flask_app.test_client(), fields, sig, f"key={key_id},algorithm={algorithm}")
    assert resp.status_code == 200
    assert redis.xlen(STREAM) == 1


def test_without_the_header_the_auth_token_still_signs(app):
    flask_app, _ = app
    fields = callback_fields(new_sid(), "sent")
    sig = RequestValidator(AUTH_TOKEN).compute_signature(URL, fields)
    assert post(flask_app.test_client(), fields, sig).status_code == 200
    # An empty header means the legacy signature too, as in twilio's libraries.
    assert post(flask_app.test_client(), fields, sig, "").status_code == 200


@pytest.mark.parametrize(
    ("header", "secret", "algorithm", "logged"),
    [
        # Signed with the auth token but claiming a shared key: the key decides.
        ("key=key_new,algorithm=HMAC_SHA256", AUTH_TOKEN, "HMAC_SHA256", "a wrong signature"),
        # The right secret, the other algorithm than the header says.
        ("key=key_new,algorithm=HMAC_SHA1", "new-shared-secret-0002", "HMAC_SHA256", "wrong"),
        # The other key's secret.
        ("key=key_new,algorithm=HMAC_SHA256", "old-shared-secret-0001", "HMAC_SHA256", "wrong"),
        ("key=key_gone,algorithm=HMAC_SHA256", "new-shared-secret-0002", "HMAC_SHA256",
         "unknown shared key 'key_gone'"),
        ("key=key_new,algorithm=HMAC_MD5", "new-shared-secret-0002", "HMAC_SHA256",
         "unsupported signature algorithm 'HMAC_MD5'"),
        ("algorithm=HMAC_SHA256", "new-shared-secret-0002", "HMAC_SHA256",
         "unknown shared key ''"),
    ],
)  # fmt: skip
def test_refusals_are_403_and_say_why_without_the_secret(
    app, caplog, header, secret, algorithm, logged
):
    flask_app, redis = app
    fields = callback_fields(new_sid(), "sent")
    with caplog.at_level(logging.DEBUG):
        resp = post(flask_app.test_client(), fields, shared_sig(secret, fields, algorithm), header)
    assert resp.status_code == 403
    assert redis.xlen(STREAM) == 0
    assert logged in caplog.text
    for s in SECRETS:
        assert s not in caplog.text


def test_header_while_no_shared_keys_are_configured_is_403_and_logged(caplog):
    flask_app, redis = make_app()
    fields = callback_fields(new_sid(), "sent")
    sig = shared_sig("anything", fields, "HMAC_SHA256")
    with caplog.at_level(logging.WARNING):
        resp = post(flask_app.test_client(), fields, sig, "key=k1,algorithm=HMAC_SHA256")
    assert resp.status_code == 403
    assert redis.xlen(STREAM) == 0
    assert "TWILIO_SHARED_KEYS is not set" in caplog.text


def test_log_only_mode_accepts_and_logs(caplog):
    flask_app, redis = make_app(TWILIO_SHARED_KEYS=KEYS, SIGNATURE_MODE="log-only")
    fields = callback_fields(new_sid(), "sent")
    with caplog.at_level(logging.WARNING):
        resp = post(flask_app.test_client(), fields, "bogus", "key=nope,algorithm=HMAC_SHA256")
    assert resp.status_code == 200
    assert redis.xlen(STREAM) == 1
    assert "unknown shared key 'nope'" in caplog.text


def test_a_get_callback_with_a_shared_key(app):
    flask_app, redis = app
    full = URL + "?" + urlencode(callback_fields(new_sid(), "sent"))
    sig = shared_sig("old-shared-secret-0001", {}, "HMAC_SHA256", full)
    headers = {
        "X-Twilio-Signature": sig,
        "X-Twilio-Webhooks-Signature-Settings": "key=key_old,algorithm=HMAC_SHA256",
    }
    assert flask_app.test_client().get(full[len(PUBLIC) :], headers=headers).status_code == 200
    assert redis.xlen(STREAM) == 1


@pytest.mark.parametrize(
    ("header", "key_id"),
    [
        ("key=abc,algorithm=HMAC_SHA256", "abc"),
        ("algorithm=HMAC_SHA256, key = abc ", "abc"),
        ("algorithm=HMAC_SHA256", ""),
        ("key", ""),
        ("key=a=b", "a=b"),
    ],
)
def test_settings_key_id(header, key_id):
    assert settings_key_id(header) == key_id
