"""The Procfile as the tests, benchmarks and dev runner read it."""

from __future__ import annotations

import pytest

from devtools.procfile import BIN, command, read_procfile


def test_roles_in_file_order_without_comments_or_blank_lines(tmp_path):
    path = tmp_path / "Procfile"
    path.write_text(
        "# processes\nweb: gunicorn -c 'python:conf' app:app\n\n"
        "worker: celery -A tasks worker\nrelease: statuspipe migrate\nbeat: celery beat\n"
    )
    assert read_procfile(path) == {
        "web": ["gunicorn", "-c", "python:conf", "app:app"],
        "worker": ["celery", "-A", "tasks", "worker"],
        "release": ["statuspipe", "migrate"],
        "beat": ["celery", "beat"],
    }


def test_a_command_runs_this_interpreters_program(tmp_path):
    path = tmp_path / "Procfile"
    path.write_text("release: statuspipe migrate\n")
    assert command("release", path) == [str(BIN / "statuspipe"), "migrate"]
    with pytest.raises(KeyError, match="web"):
        command("web", path)
