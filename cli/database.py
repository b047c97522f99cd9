"""Open the configured database, or stop with one line saying what is wrong with it."""

from __future__ import annotations

import click
from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from shared.db import make_engine

SUPPORTED = "postgresql:// (or postgres://) and sqlite:///<file>"
BACKENDS = ("postgresql", "sqlite")
# Seconds before an unreachable host is reported; libpq would otherwise wait on TCP for minutes.
CONNECT_TIMEOUT = 10


def parse_database_url(database_url: str) -> URL:
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise click.ClickException(
            f"DATABASE_URL is not a database URL; statuspipe supports {SUPPORTED}"
        ) from None
    if url.get_backend_name() not in BACKENDS:
        raise click.ClickException(
            f"DATABASE_URL names a {url.get_backend_name()} database; statuspipe supports"
            f" {SUPPORTED}"
        )
    return url


def where(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def first_line(exc: BaseException) -> str:
    reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(reason).strip().splitlines()
    return lines[0].strip() if lines else type(reason).__name__


def check_connection(engine: Engine) -> None:
    """Connect once, so that a wrong host or password is one line, not SQLAlchemy's traceback."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        raise click.ClickException(
            f"cannot connect to the database at {where(engine.url)}: {first_line(exc)}"
        ) from None


def open_database(database_url: str) -> Engine:
    """An engine on DATABASE_URL that has connected once."""
    url = parse_database_url(database_url)
    kwargs = {}
    if url.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    try:
        engine = make_engine(database_url, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise click.ClickException(
            f"DATABASE_URL needs a driver that is not installed ({exc});"
            f" statuspipe supports {SUPPORTED}"
        ) from None
    check_connection(engine)
    return engine
