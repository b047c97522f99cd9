"""Settings for a command: from the environment, else from the dev runner's var/dev.env.

A second terminal beside `make run` has none of the variables the dev runner set for its
processes; rather than stop with "DATABASE_URL is required", a command uses what `make run`
wrote, and says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import click

from shared.config import ConfigError, Settings, load_settings

# Relative to the working directory, as the dev runner writes it: a production install has no
# var/ there, so it never picks these up.
DEV_ENV_FILE = Path("var") / "dev.env"
# Either of these in the environment means it is configured on purpose: no dev fallback.
CONFIGURED_BY = ("DATABASE_URL", "REDIS_URL")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines; blank lines and # comments skipped."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.lstrip().startswith("#"):
            values[key.strip()] = value
    return values


def dev_fallback(environ: Mapping[str, str]) -> dict[str, str]:
    """The dev runner's settings for what `environ` leaves unset, or {} when it is configured
    (or `make run` never ran here). Announces their use on stderr."""
    if any(name in environ for name in CONFIGURED_BY) or not DEV_ENV_FILE.is_file():
        return {}
    click.echo(f"using the dev settings of `make run` from {DEV_ENV_FILE}", err=True)
    return read_env_file(DEV_ENV_FILE)


def load(*required: str) -> Settings:
    """Settings with `required` fields set, or one line naming what is wrong."""
    environ = {**dev_fallback(os.environ), **os.environ}
    try:
        return load_settings(environ).require(*required)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def dev_auth_token() -> str | None:
    """--token's default when TWILIO_AUTH_TOKEN is unset: the one `make run` signs with."""
    return dev_fallback(os.environ).get("TWILIO_AUTH_TOKEN")
