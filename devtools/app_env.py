"""The environment of a statuspipe process (web, worker, release) started by a test, a benchmark
or the dev runner: the settings every one of them needs, and the caller's own."""

from __future__ import annotations


def app_env(
    database_url: str,
    redis_url: str,
    *,
    auth_token: str,
    api_token: str,
    public_url: str,
    **overrides: object,
) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TWILIO_AUTH_TOKEN": auth_token,
        "API_TOKEN": api_token,
        "PUBLIC_URL": public_url,
    }
    env.update({name: str(value) for name, value in overrides.items()})
    return env
