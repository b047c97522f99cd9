"""`statuspipe config`: every setting with its variable and default (the README's table)."""

from __future__ import annotations

import click

from shared.config import settings_table


@click.command("config")
@click.option("--markdown", is_flag=True, help="As the README's Markdown table.")
def show_config(markdown: bool) -> None:
    """List every setting with its environment variable and default."""
    if markdown:
        click.echo("| Variable | Default | Meaning |\n|---|---|---|")
    for env, default, doc in settings_table():
        if markdown:
            cell = doc.replace("|", "\\|")
            click.echo(f"| `{env}` | {f'`{default}`' if default else ''} | {cell} |")
        else:
            click.echo(f"{env:<28} {default or '-':<22} {doc}")
