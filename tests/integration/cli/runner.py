"""Run the installed `statuspipe` command as an operator would: a subprocess with its own env."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from tests.conftest import BIN, ROOT


def statuspipe(
    env: dict[str, str], *args: str, cwd: Path | None = None, unset: Iterable[str] = ()
) -> subprocess.CompletedProcess[str]:
    """`unset`: variables of this process the command must not see (a new terminal's view)."""
    inherited = {k: v for k, v in os.environ.items() if k not in set(unset)}
    return subprocess.run(
        [str(BIN / "statuspipe"), *args],
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd or ROOT,
    )
