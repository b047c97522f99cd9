"""`statuspipe codes [CODE]`: the effective error-code map (shipped file plus ERROR_CODE_MAP_PATH),
as the workers will apply it to failed messages."""

from __future__ import annotations

import json
from typing import Any

import click

from cli.settings import load
from shared.config import ConfigError
from shared.error_codes import Action


def table(rows: list[tuple[int, str, str]]) -> list[str]:
    """Rows as aligned columns under a header."""
    header = ("CODE", "ACTION", "REASON")
    cells = [header, *((str(code), action, reason) for code, action, reason in rows)]
    code_width = max(len(c[0]) for c in cells)
    action_width = max(len(c[1]) for c in cells)
    return [f"{c[0]:<{code_width}}  {c[1]:<{action_width}}  {c[2]}" for c in cells]


def _entry(action: Action, known: bool) -> dict[str, Any]:
    return {
        "code": action.code,
        "action": str(action.kind),
        "state": str(action.state) if action.state is not None else None,
        "spelling": action.spelling,
        "reason": action.reason,
        "known": known,
    }


@click.command()
@click.argument("code", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def codes(code: int | None, as_json: bool) -> None:
    """Print what a failed message's ErrorCode leads to: retry, alert, contact_update: <state>
    or none. With CODE, that code's entry only."""
    from shared.bootstrap import error_code_map

    settings = load()
    try:
        mapping = error_code_map(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    default = str(mapping.default_kind)
    if code is not None:
        action, known = mapping.classify(code), code in mapping
        if as_json:
            click.echo(json.dumps({**_entry(action, known), "default": default}))
        elif known:
            click.echo(f"{code}: {action.spelling} - {action.reason}")
        else:
            click.echo(
                f"{code}: {action.spelling} - not in the error-code map; unknown codes get the"
                " default (UNKNOWN_ERROR_CODE_ACTION)"
            )
        return
    if as_json:
        entries = [_entry(action, True) for action in mapping.entries()]
        click.echo(json.dumps({"codes": entries, "default": default}, indent=2))
        return
    for line in table(mapping.rows()):
        click.echo(line.rstrip())
    source = (
        f"shipped map with {settings.error_code_map_path} on top"
        if settings.error_code_map_path
        else "shipped map"
    )
    click.echo(
        f"{len(mapping)} codes ({source}); any other code: {default} (UNKNOWN_ERROR_CODE_ACTION)"
    )
