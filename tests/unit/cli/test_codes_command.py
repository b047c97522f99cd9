"""`statuspipe codes`: the effective error-code map, as the workers apply it."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from cli import main
from shared.error_codes import load_error_codes

# DATABASE_URL set (empty) keeps a `make run` checkout's var/dev.env out of these runs.
ENV = {"DATABASE_URL": "", "ERROR_CODE_MAP_PATH": None, "UNKNOWN_ERROR_CODE_ACTION": None}


def codes(*args: str, **env: str):
    return CliRunner().invoke(main, ["codes", *args], env={**ENV, **env})


def table_rows(stdout: str) -> list[tuple[int, str, str]]:
    """(code, action, reason) from the table: columns split on runs of two or more spaces."""
    rows = []
    for line in stdout.splitlines():
        if re.match(r"\d+  ", line):
            code, action, reason = re.split(r" {2,}", line, maxsplit=2)
            rows.append((int(code), action, reason))
    return rows


def test_lists_the_whole_shipped_map_aligned_with_the_default():
    result = codes()
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert rows == load_error_codes(None).rows()
    assert len(rows) >= 50
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CODE", "ACTION", "REASON"]
    # Aligned: every reason starts in the same column as the header's.
    column = lines[0].index("REASON")
    starts = {line.index(reason) for line, (*_, reason) in zip(lines[1:-1], rows, strict=True)}
    assert starts == {column}
    assert lines[-1].endswith("any other code: alert (UNKNOWN_ERROR_CODE_ACTION)")


@pytest.mark.parametrize(
    ("code", "spelled"),
    [
        ("21610", "contact_update: opted_out"),
        ("30006", "contact_update: landline"),
        ("30003", "retry"),
        ("30007", "alert"),
    ],
)
def test_one_code_has_its_action_spelled_out(code, spelled):
    result = codes(code)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{code}: {spelled} - ")
    assert len(result.stdout.splitlines()) == 1


@pytest.mark.parametrize(("default", "shown"), [(None, "alert"), ("none", "none")])
def test_an_unknown_code_gets_the_default(default, shown):
    env = {"UNKNOWN_ERROR_CODE_ACTION": default} if default else {}
    result = codes("99999", **env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"99999: {shown} - not in the error-code map")
    assert "default" in result.stdout


def test_json_carries_the_entries_and_the_default():
    doc = json.loads(codes("--json").stdout)
    assert doc["default"] == "alert"
    by_code = {entry["code"]: entry for entry in doc["codes"]}
    assert (by_code[21610]["action"], by_code[21610]["state"]) == ("contact_update", "opted_out")
    one = json.loads(codes("99999", "--json").stdout)
    assert (one["action"], one["known"]) == ("alert", False)


def test_an_override_file_replaces_and_adds_entries(tmp_path):
    override = tmp_path / "codes.toml"
    override.write_text(
        '21610 = { action = "none", reason = "We handle STOP ourselves" }\n'
        '99999 = { action = "retry", reason = "Our carrier hiccup" }\n'
    )
    result = codes(ERROR_CODE_MAP_PATH=str(override))
    rows = {code: action for code, action, _ in table_rows(result.stdout)}
    assert (rows[21610], rows[99999]) == ("none", "retry")
    assert str(override) in result.stdout.splitlines()[-1]
    assert codes("99999", ERROR_CODE_MAP_PATH=str(override)).stdout.startswith("99999: retry - ")


def test_a_bad_override_file_is_one_line_naming_file_and_line(tmp_path):
    override = tmp_path / "codes.toml"
    override.write_text(
        '30003 = { action = "retry", reason = "ok" }\n30007 = { action = "page" }\n'
    )
    result = codes(ERROR_CODE_MAP_PATH=str(override))
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: {override}:2: code 30007: unknown action 'page'")
