"""The documentation cannot drift from the code, and the packages import each other one way."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from click.testing import CliRunner

from cli import main
from shared.config import settings_table

ROOT = Path(__file__).resolve().parents[2]


def test_readme_settings_table_is_current():
    table = CliRunner().invoke(main, ["config", "--markdown"]).output.strip()
    readme = (ROOT / "README.md").read_text()
    assert table in readme, "regenerate the README table with `statuspipe config --markdown`"


def test_env_example_names_every_setting():
    example = (ROOT / ".env.example").read_text()
    missing = [env for env, _, _ in settings_table() if f"\n{env}=" not in f"\n{example}"]
    assert not missing


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text()[:600]
    assert "make run" in head
    assert "make test" in head


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_ingress_does_not_import_workers():
    # The web image stays thin: no Celery, no worker code on the request path.
    assert "workers" not in _imports("ingest")
    assert "celery" not in _imports("ingest")


def test_workers_do_not_import_the_ingress():
    assert "ingest" not in _imports("workers")


def test_shared_does_not_import_either_side():
    assert not {"ingest", "workers", "cli", "devtools", "celery", "flask"} & _imports("shared")


def test_production_packages_never_import_the_cli_or_devtools():
    # cli/ sits on top of them all; devtools/ is not in the production image.
    for package in ("ingest", "workers", "shared"):
        assert not {"cli", "devtools"} & _imports(package), package


def test_only_the_cli_imports_all_three():
    # Of the packages that ship; devtools/, bench/ and tests/ may import anything.
    shipped = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"devtools", "bench", "tests"}
    packages = shipped - {"cli"}
    everything = {"ingest", "workers", "shared"}
    assert [p for p in sorted(packages) if everything <= _imports(p)] == []


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_readme_names_every_variable_gunicorn_reads():
    conf = (ROOT / "ingest" / "gunicorn_conf.py").read_text()
    read = set(re.findall(r"environ\.get\(\s*[\"'](\w+)[\"']", conf))
    assert read, "the pattern no longer finds gunicorn_conf.py's variables"
    readme = (ROOT / "README.md").read_text()
    assert [name for name in sorted(read) if f"`{name}`" not in readme] == []


def test_readme_commands_name_every_command_and_option():
    section = _readme_section("Commands")
    missing = [name for name in main.commands if f"statuspipe {name}" not in section]
    for name, command in main.commands.items():
        options = [opt for param in command.params for opt in param.opts if opt.startswith("--")]
        missing += [f"{name} {opt}" for opt in options if opt not in section]
    assert missing == []
