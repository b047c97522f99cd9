"""The package as the image installs it (`pip install .`): built here with pip, from PyPI's
setuptools, as the Dockerfile and Heroku's buildpack build it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_package_carries_every_migration(tmp_path):
    """The image runs `pip install .` and then `statuspipe migrate` from site-packages: a
    migration missing from the wheel would leave production a revision behind the code."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path),
         str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("statuspipe-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = ROOT / "shared" / "migrations"
    files = [
        *migrations.glob("*.py"),
        *migrations.glob("*.mako"),
        *(migrations / "versions").glob("*.py"),
    ]
    expected = {p.relative_to(ROOT).as_posix() for p in files}
    assert expected - names == set()
