"""Settings of issue 13 (shared keys, Basic auth, CORS, the API limit) and the log redaction
that keeps their secrets and phone numbers out of every log line."""

import logging

import pytest

from shared.config import ConfigError, load_settings
from shared.logs import (
    TWILIO_SDK_LOGGER,
    RedactingFormatter,
    configure_logging,
    mask_number,
    settings_secrets,
)


def test_shared_keys_from_pairs_a_file_and_a_directory(tmp_path):
    keys = load_settings({"TWILIO_SHARED_KEYS": " a=1secret , b = 2secret "}).twilio_shared_keys
    assert keys == (("a", "1secret"), ("b", "2secret"))
    path = tmp_path / "keys"
    path.write_text("k_old=old-secret\nk_new=new-secret\n")
    keys = load_settings({"TWILIO_SHARED_KEYS": str(path)}).twilio_shared_keys
    assert keys == (("k_old", "old-secret"), ("k_new", "new-secret"))
    mounted = tmp_path / "secret"
    mounted.mkdir()
    (mounted / "k1").write_text("s3cret-one\n")
    (mounted / "k2").write_text("s3cret-two")
    (mounted / "..data").mkdir()  # what a Kubernetes mount also holds
    keys = load_settings({"TWILIO_SHARED_KEYS": str(mounted)}).twilio_shared_keys
    assert keys == (("k1", "s3cret-one"), ("k2", "s3cret-two"))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("a=1secret,a=2secret", "names key 'a' twice"),
        ("a=", "entry 1 is not"),
        ("a=1secret,topsecretvalue", "entry 2 is not"),
        ("/nonexistent/keys", "cannot read"),
        ("key id=1secret", "entry 1 is not"),
    ],
)
def test_bad_shared_keys_stop_at_start_without_echoing_a_secret(raw, message):
    with pytest.raises(ConfigError) as exc:
        load_settings({"TWILIO_SHARED_KEYS": raw})
    assert message in str(exc.value)
    for secret in ("1secret", "2secret", "topsecretvalue"):
        assert secret not in str(exc.value)


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"CALLBACK_BASIC_AUTH": "twilio:pw"}, "callback_basic_auth", "twilio:pw"),
        ({"CORS_ORIGINS": "https://a.example, http://b.example:8080/"}, "cors_origins",
         ("https://a.example", "http://b.example:8080")),
        ({"API_UNAUTHENTICATED_LIMIT": "5 per second"}, "api_unauthenticated_limit",
         "5 per second"),
    ],
)  # fmt: skip
def test_trust_settings(env, field, value):
    assert getattr(load_settings(env), field) == value


@pytest.mark.parametrize(
    "env",
    [
        {"CALLBACK_BASIC_AUTH": "nocolon"},
        {"CALLBACK_BASIC_AUTH": ":pw"},
        {"CORS_ORIGINS": "ops.example.com"},
        {"CORS_ORIGINS": "https://ops.example.com/path"},
        {"API_UNAUTHENTICATED_LIMIT": "lots"},
    ],
)
def test_bad_trust_settings_stop_at_start(env):
    with pytest.raises(ConfigError):
        load_settings(env)


@pytest.mark.parametrize(
    ("number", "masked"),
    [("+15005550006", "+*******0006"), ("whatsapp:+447700900123", "whatsapp:+********0123"),
     ("1234", "1234"), ("", ""), (None, "")],
)  # fmt: skip
def test_mask_number(number, masked):
    assert mask_number(number) == masked


def test_the_formatter_redacts_every_secret_and_masks_numbers_in_any_line():
    settings = load_settings({
        "TWILIO_AUTH_TOKEN": "auth-token-abcdef", "TWILIO_AUTH_TOKEN_SECONDARY": "second-token-1",
        "API_TOKEN": "api-token-xyz", "TWILIO_API_KEY_SECRET": "api-key-secret-1",
        "TWILIO_SHARED_KEYS": "k=shared-secret-1", "CALLBACK_BASIC_AUTH": "twilio:basic-pass-1",
        "DATABASE_URL": "postgresql://u:db-password-1@h/d", "REDIS_URL": "redis://:redis-pass-1@h",
    })  # fmt: skip
    secrets = settings_secrets(settings)
    formatter = RedactingFormatter(logging.Formatter("%(message)s"), secrets)
    line = ("token auth-token-abcdef second-token-1 api-token-xyz api-key-secret-1 "
            "shared-secret-1 basic-pass-1 db-password-1 redis-pass-1 to +15005550006 "
            "url To=%2B15005550006&From=%2b447700900123")  # fmt: skip
    try:
        raise RuntimeError("failed for +15005550006 with auth-token-abcdef")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, "", 0, "%s", (line,), sys.exc_info())
    out = formatter.format(record)
    for secret in ("auth-token-abcdef", "second-token-1", "api-token-xyz", "api-key-secret-1",
                   "shared-secret-1", "basic-pass-1", "db-password-1", "redis-pass-1",
                   "15005550006", "447700900123"):  # fmt: skip
        assert secret not in out, secret
    assert "+*******0006" in out
    assert "%2B*******0006" in out
    assert "RuntimeError" in out  # the traceback is kept, redacted


@pytest.mark.parametrize(("level", "sdk_info_shown"), [("INFO", False), ("DEBUG", True)])
def test_the_twilio_sdks_request_lines_show_at_debug_only(level, sdk_info_shown):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(load_settings({"LOG_LEVEL": level}), "test")
        sdk = logging.getLogger(TWILIO_SDK_LOGGER)
        assert sdk.isEnabledFor(logging.INFO) is sdk_info_shown
        assert sdk.isEnabledFor(logging.WARNING)
    finally:
        root.handlers[:], level_before = saved
        root.setLevel(level_before)
        logging.getLogger(TWILIO_SDK_LOGGER).setLevel(logging.NOTSET)
