import pytest

from shared.config import ConfigError, load_settings, normalize_database_url


def test_defaults_need_nothing():
    s = load_settings({})
    assert s.signature_mode == "enforce"
    assert s.batch_size == 1000
    assert s.port == 8000
    assert s.claim_idle_seconds <= 30


def test_missing_required_setting_names_it_in_one_line():
    with pytest.raises(ConfigError) as err:
        load_settings({"REDIS_URL": "redis://x", "API_TOKEN": "t"}).require_for_web()
    assert str(err.value).startswith("DATABASE_URL is required")
    assert "\n" not in str(err.value)


def test_web_needs_token_and_public_url_unless_signatures_are_off():
    env = {"REDIS_URL": "redis://x", "DATABASE_URL": "sqlite://", "API_TOKEN": "t"}
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        load_settings(env).require_for_web()
    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        load_settings({**env, "TWILIO_AUTH_TOKEN": "a"}).require_for_web()
    load_settings({**env, "SIGNATURE_MODE": "off"}).require_for_web()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BATCH_SIZE": "lots"}, "BATCH_SIZE must be an integer"),
        ({"BATCH_SIZE": "0"}, "BATCH_SIZE must be at least 1"),
        ({"SIGNATURE_MODE": "maybe"}, "SIGNATURE_MODE must be one of"),
        ({"LOG_JSON": "perhaps"}, "LOG_JSON must be true or false"),
        ({"CLAIM_IDLE_SECONDS": "soon"}, "CLAIM_IDLE_SECONDS must be a number"),
    ],
)
def test_junk_values_are_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_secondary_token_is_accepted_during_rotation():
    s = load_settings({"TWILIO_AUTH_TOKEN": "a", "TWILIO_AUTH_TOKEN_SECONDARY": "b"})
    assert s.auth_tokens == ("a", "b")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg2://u:p@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+psycopg2://u@h/d"),
        ("postgresql+psycopg2://u@h/d", "postgresql+psycopg2://u@h/d"),
        ("sqlite:///var/x.db", "sqlite:///var/x.db"),
    ],
)
def test_database_url_normalisation(url, expected):
    assert normalize_database_url(url) == expected


def test_public_url_loses_its_trailing_slash():
    assert load_settings({"PUBLIC_URL": "https://h.example.com/"}).public_url == (
        "https://h.example.com"
    )


@pytest.mark.parametrize(
    ("url", "reqs", "expected"),
    [
        ("redis://h:6379/0", "none", "redis://h:6379/0"),
        ("rediss://h:6380", "none", "rediss://h:6380?ssl_cert_reqs=none"),
        ("rediss://h:6380/0?x=1", "required", "rediss://h:6380/0?x=1&ssl_cert_reqs=required"),
        ("rediss://h?ssl_cert_reqs=optional", "none", "rediss://h?ssl_cert_reqs=optional"),
    ],
)
def test_rediss_urls_carry_the_tls_mode(url, reqs, expected):
    settings = load_settings({"REDIS_URL": url, "REDIS_TLS_CERT_REQS": reqs})
    assert settings.redis_url == expected


def test_unknown_tls_mode_is_named():
    with pytest.raises(ConfigError, match="REDIS_TLS_CERT_REQS"):
        load_settings({"REDIS_TLS_CERT_REQS": "maybe"})
