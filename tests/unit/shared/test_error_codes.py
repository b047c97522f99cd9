"""The Twilio error-code map: the shipped table, classification, overrides, bad files, start-up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from shared.config import ConfigError, load_settings
from shared.error_codes import (
    ActionKinds,
    ErrorCodeMap,
    ErrorCodeMapError,
    load_error_codes,
    shipped_path,
)

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = Path(shipped_path())
ACTIONS = {"retry", "alert", "contact_update", "none"}
STATES = {"opted_out", "landline", "invalid", "unreachable", "no_channel"}

# Every code docs/twilio-reference.md section 5 gives a proposed action for.
REFERENCE_CODES = [
    20003, 20429, 21211, 21408, 21606, 21608, 21610, 21611, 21612, 21614, 21617, 21635,
    30001, 30002, 30003, 30004, 30005, 30006, 30007, 30008, 30009, 30010, 30011, 30017,
    30018, 30019, 30020, 30021, 30022, 30023, 30024, 30025, 30026, 30027, 30032, 30033,
    30034, 30035, 30036, 30037, 30038, 30042, 30045, 30410, 30450, 30453, 60005, 63003,
    63005, 63012, 63013, 63016, 63018, 63021, 63024, 63027, 63028, 63032, 63038, 63041,
    63042, 63049, 63051, 11200,
]  # fmt: skip


def _shipped_lines() -> list[tuple[int, str]]:
    """(line number, text) of every entry line of the shipped file."""
    lines = SHIPPED.read_text().splitlines()
    return [
        (number, line)
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


SHIPPED_LINES = _shipped_lines()


@pytest.fixture(scope="module")
def shipped() -> ErrorCodeMap:
    return load_error_codes(None, "alert")


# --- the shipped table ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "line"), SHIPPED_LINES, ids=[line.split()[0] for _, line in SHIPPED_LINES]
)
def test_every_shipped_entry_is_one_line_with_a_valid_action(number, line, shipped):
    entry = tomllib.loads(line)  # one line must be a whole entry
    assert len(entry) == 1, f"line {number}"
    [(key, value)] = entry.items()
    assert re.fullmatch(r"[1-9][0-9]*", key), f"line {number}: code {key!r}"
    assert value["action"] in ACTIONS, f"line {number}"
    if value["action"] == "contact_update":
        assert value.get("state") in STATES, f"line {number}"
    else:
        assert "state" not in value, f"line {number}"
    assert set(value) <= {"action", "state", "reason"}, f"line {number}"
    assert value["reason"].strip(), f"line {number}"

    action = shipped.classify(int(key))
    assert (action.kind, action.state, action.reason, action.code) == (
        value["action"],
        value.get("state"),
        value["reason"],
        int(key),
    )


def test_shipped_map_has_at_least_50_codes_including_every_reference_code(shipped):
    assert len(shipped) == len(SHIPPED_LINES) >= 50
    missing = [code for code in REFERENCE_CODES if code not in shipped]
    assert not missing


@pytest.mark.parametrize(
    ("code", "spelling"),
    [
        (30003, "retry"),
        (30008, "retry"),
        (30001, "retry"),
        (30017, "retry"),
        (30022, "retry"),
        (20429, "retry"),
        (63018, "retry"),
        (30007, "alert"),
        (30032, "alert"),
        (30034, "alert"),
        (21408, "alert"),
        (63016, "alert"),
        (63051, "alert"),
        (20003, "alert"),
        (21610, "contact_update: opted_out"),
        (30006, "contact_update: landline"),
        (21614, "contact_update: landline"),
        (21635, "contact_update: landline"),
        (21211, "contact_update: invalid"),
        (30005, "contact_update: invalid"),
        (63024, "contact_update: invalid"),
        (21612, "contact_update: unreachable"),
        (63003, "contact_update: no_channel"),
        (63032, "contact_update: no_channel"),
        (30009, "none"),
        (30011, "none"),
        (30038, "none"),
    ],
)
def test_known_codes_classify_as_the_reference_says(shipped, code, spelling):
    action = shipped.classify(code)
    assert action.spelling == spelling
    assert action.code == code


def test_rows_list_code_spelling_and_reason_in_code_order(shipped):
    rows = shipped.rows()
    assert [code for code, _, _ in rows] == sorted(
        int(line.split()[0]) for _, line in SHIPPED_LINES
    )
    assert (21610, "contact_update: opted_out", shipped.classify(21610).reason) in rows
    assert [a.code for a in shipped.entries()] == [code for code, _, _ in rows]


# --- unknown codes and the default ----------------------------------------------------------


@pytest.mark.parametrize("default", ["alert", "retry", "none"])
def test_unknown_code_gets_the_default_action_with_a_reason_naming_it(default):
    action = load_error_codes(None, default).classify(99999)
    assert action.kind == default
    assert action.state is None
    assert action.code == 99999
    assert "99999 is not in the error-code map" in action.reason


def test_no_error_code_means_nothing_to_do(shipped):
    action = shipped.classify(None)
    assert (action.kind, action.code) == (ActionKinds.NONE, None)


@pytest.mark.parametrize("default", ["contact_update", "page", ""])
def test_default_action_must_not_say_anything_about_the_recipient(default):
    with pytest.raises(ConfigError, match="UNKNOWN_ERROR_CODE_ACTION must be one of"):
        load_error_codes(None, default)
    with pytest.raises(ConfigError, match="UNKNOWN_ERROR_CODE_ACTION must be one of"):
        load_settings({"UNKNOWN_ERROR_CODE_ACTION": default or " "})


def test_settings_default_to_the_shipped_map_and_alert():
    settings = load_settings({})
    assert (settings.error_code_map_path, settings.unknown_error_code_action) == ("", "alert")
    settings = load_settings(
        {"ERROR_CODE_MAP_PATH": "/x.toml", "UNKNOWN_ERROR_CODE_ACTION": "none"}
    )
    assert (settings.error_code_map_path, settings.unknown_error_code_action) == ("/x.toml", "none")


# --- the override file ----------------------------------------------------------------------


def test_override_file_replaces_and_adds_entries_one_by_one(tmp_path, shipped):
    override = tmp_path / "codes.toml"
    override.write_text(
        "# ours\n"
        '30003 = { action = "alert", reason = "We page on unreachable handsets" }\n'
        '99001 = { action = "contact_update", state = "invalid", reason = "Our gateway" }\n'
    )
    merged = load_error_codes(str(override), "alert")

    assert merged.classify(30003).spelling == "alert"
    assert merged.classify(30003).reason == "We page on unreachable handsets"
    assert merged.classify(99001).spelling == "contact_update: invalid"
    assert merged.classify(30006) == shipped.classify(30006)
    assert len(merged) == len(shipped) + 1


def test_empty_override_changes_nothing(tmp_path, shipped):
    override = tmp_path / "codes.toml"
    override.write_text("# nothing yet\n")
    assert load_error_codes(str(override), "alert").rows() == shipped.rows()


# --- bad files: one line, naming the file and the line --------------------------------------

GOOD = '30003 = { action = "retry", reason = "fine" }\n'


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        pytest.param(
            GOOD + '30005 = { action = "retry" reason = "x" }\n',
            2,
            "TOML syntax error",
            id="syntax",
        ),
        pytest.param(GOOD + "30005 = {\n", 2, "TOML syntax error", id="unclosed-table"),
        pytest.param(GOOD + "30006 = \n", 2, "TOML syntax error", id="no-value"),
        pytest.param(GOOD + GOOD, 2, "TOML syntax error", id="duplicate-code"),
        pytest.param(
            "# comment\n\n" + GOOD + '30005 = { action = "retr", reason = "x" }\n',
            4,
            "code 30005: unknown action 'retr'",
            id="unknown-action",
        ),
        pytest.param(
            GOOD + '30005 = { reason = "x" }\n',
            2,
            "code 30005: unknown action None",
            id="no-action",
        ),
        pytest.param(
            GOOD + '21610 = { action = "contact_update", reason = "x" }\n',
            2,
            "code 21610: contact_update needs state",
            id="contact-update-without-state",
        ),
        pytest.param(
            GOOD + '21610 = { action = "contact_update", state = "gone", reason = "x" }\n',
            2,
            "code 21610: contact_update needs state",
            id="contact-update-bad-state",
        ),
        pytest.param(
            GOOD + '30007 = { action = "alert", state = "invalid", reason = "x" }\n',
            2,
            "code 30007: state is only for contact_update",
            id="state-on-alert",
        ),
        pytest.param(
            GOOD + 'abc = { action = "retry", reason = "x" }\n',
            2,
            "'abc' is not an error code",
            id="word-code",
        ),
        pytest.param(
            GOOD + '"3000x" = { action = "retry", reason = "x" }\n',
            2,
            "'3000x' is not an error code",
            id="quoted-non-integer-code",
        ),
        pytest.param(
            GOOD + '030003 = { action = "retry", reason = "x" }\n',
            2,
            "'030003' is not an error code",
            id="leading-zero",
        ),
        pytest.param(
            GOOD + '30005 = { action = "retry" }\n',
            2,
            "code 30005: reason is missing",
            id="missing-reason",
        ),
        pytest.param(
            GOOD + '30005 = { action = "retry", reason = "  " }\n',
            2,
            "code 30005: reason is missing",
            id="blank-reason",
        ),
        pytest.param(
            GOOD + '30005 = { action = "retry", reason = 5 }\n',
            2,
            "code 30005: reason is missing",
            id="reason-not-text",
        ),
        pytest.param(
            GOOD + '30005 = { action = "retry", reason = "a\\nb" }\n',
            2,
            "code 30005: reason must be one line",
            id="multi-line-reason",
        ),
        pytest.param(
            GOOD + '30005 = { action = "retry", reson = "x" }\n',
            2,
            "code 30005: unknown field 'reson'",
            id="unknown-field",
        ),
        pytest.param(GOOD + '30005 = "retry"\n', 2, "code 30005: expected {", id="not-a-table"),
        pytest.param(
            GOOD + '\n[30005]\naction = "launch"\nreason = "x"\n',
            3,
            "code 30005: unknown action 'launch'",
            id="table-header-form",
        ),
    ],
)
def test_bad_file_is_refused_naming_file_and_line(tmp_path, content, line, problem):
    path = tmp_path / "codes.toml"
    path.write_text(content)
    with pytest.raises(ErrorCodeMapError) as err:
        load_error_codes(str(path), "alert")
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: {problem}"), message
    assert "\n" not in message
    assert isinstance(err.value, ConfigError)
    assert (err.value.path, err.value.line) == (str(path), line)


def test_file_that_is_not_utf8_is_refused_at_the_bad_line(tmp_path):
    path = tmp_path / "codes.toml"
    path.write_bytes(GOOD.encode() + b'30005 = { action = "retry", reason = "\xff" }\n')
    with pytest.raises(ErrorCodeMapError, match=re.escape(f"{path}:2: not UTF-8")):
        load_error_codes(str(path), "alert")


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_file_is_refused_with_line_0(tmp_path, kind):
    path = tmp_path / "codes.toml"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(ErrorCodeMapError) as err:
        load_error_codes(str(path), "alert")
    assert str(err.value).startswith(f"{path}:0: cannot read the file: ")
    assert "\n" not in str(err.value)


# --- process start ----------------------------------------------------------------------------

BAD_ACTION = '30005 = { action = "retr", reason = "x" }\n'


@pytest.mark.parametrize(
    ("entry", "extra_env", "exit_code"),
    [
        ("worker_settings", {}, 2),
        ("web_settings", {"API_TOKEN": "t", "SIGNATURE_MODE": "off"}, 3),
    ],
)
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (GOOD + BAD_ACTION, "{path}:2: code 30005: unknown action 'retr'"),
        ("30005 = {\n", "{path}:1: TOML syntax error"),
        (None, "{path}:0: cannot read the file"),
        (GOOD, None),
    ],
    ids=["unknown-action", "syntax", "missing-file", "good-file"],
)
def test_process_start_with_a_bad_map_prints_one_line_and_exits(
    tmp_path, entry, extra_env, exit_code, content, expected
):
    path = tmp_path / "codes.toml"
    if content is not None:
        path.write_text(content)
    env = {
        k: v for k, v in os.environ.items() if k not in {"UNKNOWN_ERROR_CODE_ACTION", "LOG_JSON"}
    }
    env.update(
        DATABASE_URL="sqlite:///unused.db",
        REDIS_URL="redis://127.0.0.1:1/0",
        ERROR_CODE_MAP_PATH=str(path),
        **extra_env,
    )
    result = subprocess.run(
        [sys.executable, "-c", f"from shared.bootstrap import {entry}; {entry}()"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if expected is None:
        assert (result.returncode, result.stderr) == (0, "")
        return
    process = entry.split("_")[0]
    lines = result.stderr.splitlines()
    assert result.returncode == exit_code
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"statuspipe {process}: " + expected.format(path=path)), lines[0]
