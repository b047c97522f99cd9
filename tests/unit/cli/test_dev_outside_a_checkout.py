"""`statuspipe dev` in the production image, which has no devtools/: one line, not a traceback."""

from __future__ import annotations

import sys

from click.testing import CliRunner

from cli import main


def test_dev_without_devtools_says_it_needs_a_checkout(monkeypatch):
    # None in sys.modules makes the import fail as a missing package does.
    monkeypatch.setitem(sys.modules, "devtools.devserver", None)
    result = CliRunner().invoke(main, ["dev"])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert "only works in a checkout" in line
