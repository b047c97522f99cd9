"""The check every spawned process's log goes through (tests/log_leaks.py) finds what it must."""

from __future__ import annotations

import pytest

from tests.log_leaks import leaks, secrets_of

SECRET = "s3cret-auth-token-value"


@pytest.mark.parametrize(
    ("line", "leaked"),
    [
        ("[2026-11-30 03:46:52 +0000] [11875] [INFO] Booting worker", False),
        ("sent to *******5310 (masked)", False),
        ("sent to +15558675310", True),
        ("body To=%2B15558675310&From=x", True),
        ("body To=%2b15558675310", True),
        (f"token {SECRET} refused", True),
        ("token ***** refused", False),
    ],
)
def test_lines_that_leak_are_found(line, leaked):
    assert bool(leaks(f"first line\n{line}\n", {SECRET})) is leaked


def test_a_leak_is_reported_by_line_without_repeating_it():
    (report,) = leaks(f"ok\nauth {SECRET}\n", {SECRET})
    assert report.startswith("line 2:")
    assert SECRET not in report


def test_secrets_are_read_as_the_process_reads_them(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("k1=first-shared-secret\nk2=second-shared-secret\n")
    env = {
        "TWILIO_AUTH_TOKEN": "a" * 32, "API_TOKEN": "the-api-token", "PUBLIC_URL": "https://x",
        "TWILIO_SHARED_KEYS": str(keys), "CALLBACK_BASIC_AUTH": "twilio:basic-password",
        "SMTP_URL": "smtp://user:smtp-password@mail:25", "ALERT_EMAIL_FROM": "a@example.com",
        "ALERT_EMAIL_TO": "b@example.com", "REDIS_URL": "redis://localhost",
        "DATABASE_URL": "sqlite://", "METRICS_TOKEN": "x",  # too short to search for
    }  # fmt: skip
    expected = {"a" * 32, "the-api-token", "first-shared-secret", "second-shared-secret",
                "basic-password", "smtp-password"}  # fmt: skip
    assert secrets_of(env) == expected
