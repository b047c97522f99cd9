"""The Procfile, read as Heroku reads it: the one list of process roles and their commands.

Tests, `make bench` and the dev runner start processes from it, so each line is proved to work
as written.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
# Where pip put gunicorn, celery and statuspipe: the interpreter's own bin/, not whatever PATH
# finds first.
BIN = Path(sys.executable).parent


def read_procfile(path: Path = PROCFILE) -> dict[str, list[str]]:
    """{role: argv} in the file's order; blank lines and # comments skipped."""
    roles: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            roles[name.strip()] = shlex.split(command)
    return roles


def command(role: str, path: Path = PROCFILE) -> list[str]:
    """The role's argv with its program taken from this interpreter's bin/."""
    roles = read_procfile(path)
    if role not in roles:
        raise KeyError(f"no {role!r} line in the Procfile")
    program, *args = roles[role]
    return [str(BIN / program), *args]
