"""A command's error as one line (`Error: ...` on stderr) with the exit status it calls for."""

from __future__ import annotations

import click


def fail(message: str, exit_code: int = 1) -> click.ClickException:
    """The exception to raise; click prints it and exits with `exit_code`."""
    error = click.ClickException(message)
    error.exit_code = exit_code
    return error
