"""Twilio error codes -> what to do about a failed message: retry, alert, update contact, none.

The table ships as `error_codes.toml` beside this module, one line per code so that a problem in it
is reported by line. ERROR_CODE_MAP_PATH names a file of the same shape whose entries replace
shipped ones or add new ones; codes in neither get UNKNOWN_ERROR_CODE_ACTION. A bad file raises
`ErrorCodeMapError` with the one-line message `<file>:<line>: <problem>`; processes load the map at
start (shared/bootstrap.py), so a bad one stops them there rather than at the first failure.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

from shared.config import UNKNOWN_ERROR_CODE_ACTIONS, ConfigError

SHIPPED_FILE = "error_codes.toml"
ENTRY_FIELDS = ("action", "state", "reason")


class ActionKinds(StrEnum):
    RETRY = "retry"
    ALERT = "alert"
    CONTACT_UPDATE = "contact_update"
    NONE = "none"


class ContactStates(StrEnum):
    OPTED_OUT = "opted_out"
    LANDLINE = "landline"
    INVALID = "invalid"
    UNREACHABLE = "unreachable"
    NO_CHANNEL = "no_channel"


@dataclass(frozen=True)
class Action:
    """What to do about one error code; `code` is None when the callback carried none."""

    kind: ActionKinds
    state: ContactStates | None
    reason: str
    code: int | None

    def __post_init__(self) -> None:
        if (self.kind is ActionKinds.CONTACT_UPDATE) != (self.state is not None):
            raise ValueError(f"state {self.state!r} does not fit action {self.kind!r}")

    @property
    def spelling(self) -> str:
        """`retry`, `alert`, `none`, or `contact_update: <state>`."""
        return f"{self.kind}: {self.state}" if self.state is not None else str(self.kind)


class ErrorCodeMapError(ConfigError):
    """A bad error-code map file; the message is `<file>:<line>: <problem>` (line 0: no line)."""

    def __init__(self, path: str, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        super().__init__(f"{path}:{line}: {problem}")


class ErrorCodeMap:
    """Known codes and the action for the rest. Pure: build it with `load_error_codes`."""

    def __init__(
        self, actions: Mapping[int, Action], default_kind: ActionKinds = ActionKinds.ALERT
    ) -> None:
        if default_kind is ActionKinds.CONTACT_UPDATE:
            # An unknown code says nothing about the recipient.
            raise ValueError("the default action cannot be contact_update")
        self._actions = dict(actions)
        self.default_kind = default_kind

    def classify(self, code: int | None) -> Action:
        if code is None:
            return Action(ActionKinds.NONE, None, "No error code", None)
        known = self._actions.get(code)
        if known is not None:
            return known
        reason = f"Error code {code} is not in the error-code map"
        return Action(self.default_kind, None, reason, code)

    def entries(self) -> tuple[Action, ...]:
        """Every mapped code's action, by code."""
        return tuple(self._actions[code] for code in sorted(self._actions))

    def rows(self) -> list[tuple[int, str, str]]:
        """(code, action spelling, reason) per mapped code, by code: `statuspipe codes`."""
        return [(code, a.spelling, a.reason) for code, a in sorted(self._actions.items())]

    def __len__(self) -> int:
        return len(self._actions)

    def __contains__(self, code: object) -> bool:
        return code in self._actions


_CODE = re.compile(r"[1-9][0-9]*")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _line_of(text: str, key: str) -> int:
    """The line an entry starts on: `KEY = ...`, `"KEY" = ...`, `KEY.field = ...` or `[KEY]`."""
    pattern = re.compile(
        r"^[ \t]*(?:\[[ \t]*)?([\"']?)" + re.escape(key) + r"\1[ \t]*[=.\]]", re.MULTILINE
    )
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else 1


class _EntryError(Exception):
    """What is wrong with one entry; the caller adds the file and line."""


def _parse_entry(key: str, value: Any) -> Action:
    if not _CODE.fullmatch(key):
        raise _EntryError(f"{key!r} is not an error code (expected an integer such as 30003)")
    code = int(key)
    if not isinstance(value, dict):
        raise _EntryError(f"code {code}: expected {{ action = ..., reason = ... }}")
    unknown = sorted(set(value) - set(ENTRY_FIELDS))
    if unknown:
        expected = ", ".join(ENTRY_FIELDS)
        raise _EntryError(f"code {code}: unknown field {unknown[0]!r} (expected {expected})")
    action = value.get("action")
    if action not in tuple(ActionKinds):
        allowed = ", ".join(ActionKinds)
        raise _EntryError(f"code {code}: unknown action {action!r} (expected one of {allowed})")
    kind = ActionKinds(action)
    state = value.get("state")
    if kind is ActionKinds.CONTACT_UPDATE:
        if state not in tuple(ContactStates):
            allowed = ", ".join(ContactStates)
            raise _EntryError(
                f"code {code}: contact_update needs state = one of {allowed}, got {state!r}"
            )
    elif state is not None:
        raise _EntryError(f"code {code}: state is only for contact_update, not {kind}")
    reason = value.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise _EntryError(f"code {code}: reason is missing")
    if "\n" in reason or "\r" in reason:
        raise _EntryError(f"code {code}: reason must be one line")
    return Action(kind, ContactStates(state) if state else None, reason.strip(), code)


def parse_error_codes(text: str, path: str) -> dict[int, Action]:
    """The entries of one map file's text; `path` only names it in errors."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        if position:
            line = int(position.group(1))
            problem = f"{message[: position.start()]} (column {position.group(2)})"
        else:
            line, problem = max(1, len(text.splitlines())), message
        raise ErrorCodeMapError(path, line, f"TOML syntax error: {problem}") from None
    actions: dict[int, Action] = {}
    for key, value in document.items():
        try:
            action = _parse_entry(key, value)
        except _EntryError as exc:
            raise ErrorCodeMapError(path, _line_of(text, key), str(exc)) from None
        actions[int(key)] = action
    return actions


def read_error_codes(path: str) -> dict[int, Action]:
    """The entries of the map file at `path`."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ErrorCodeMapError(path, 0, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ErrorCodeMapError(path, line, "not UTF-8 text") from None
    return parse_error_codes(text, path)


def shipped_path() -> str:
    return str(resources.files("shared").joinpath(SHIPPED_FILE))


def merge_error_codes(layers: Iterable[Mapping[int, Action]]) -> dict[int, Action]:
    """Later layers replace earlier ones entry by entry."""
    merged: dict[int, Action] = {}
    for layer in layers:
        merged.update(layer)
    return merged


def load_error_codes(override_path: str | None, default_action: str = "alert") -> ErrorCodeMap:
    """The shipped map, with the entries of the file at `override_path` (if any) on top."""
    if default_action not in UNKNOWN_ERROR_CODE_ACTIONS:
        allowed = ", ".join(UNKNOWN_ERROR_CODE_ACTIONS)
        raise ConfigError(
            f"UNKNOWN_ERROR_CODE_ACTION must be one of {allowed}, got {default_action!r}"
        )
    layers = [read_error_codes(shipped_path())]
    if override_path:
        layers.append(read_error_codes(override_path))
    return ErrorCodeMap(merge_error_codes(layers), ActionKinds(default_action))
