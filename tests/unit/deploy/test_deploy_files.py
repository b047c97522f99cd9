"""The deploy files agree with the code: the same commands as the Procfile, only variables the
code reads, an image that holds every package. No cluster runs here, so drift is what can be
caught: a renamed setting or a changed command that one file was not told about."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.procfile import read_procfile as procfile
from shared.config import settings_table

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"

# Read by ingest/gunicorn_conf.py, not by Settings: gunicorn's own knobs.
GUNICORN_VARIABLES = {"PORT", "WEB_CONCURRENCY", "GUNICORN_WORKER_CLASS", "GUNICORN_TIMEOUT",
                      "GUNICORN_ACCESS_LOG", "GUNICORN_MAX_REQUESTS"}  # fmt: skip


def k8s_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def k8s(kind: str, name: str) -> dict[str, Any]:
    for doc in k8s_documents():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name} in deploy/k8s")


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["template"]["spec"]["containers"]


def known_variables() -> set[str]:
    return {name for name, _, _ in settings_table()} | GUNICORN_VARIABLES


def test_gunicorn_variables_listed_here_are_the_ones_it_reads():
    conf = (ROOT / "ingest" / "gunicorn_conf.py").read_text()
    assert set(re.findall(r"environ\.get\(['\"](\w+)['\"]", conf)) == GUNICORN_VARIABLES


@pytest.mark.parametrize(
    ("kind", "name", "process"),
    [
        ("Deployment", "statuspipe-web", "web"),
        ("Deployment", "statuspipe-worker", "worker"),
        ("Job", "statuspipe-migrate", "release"),
    ],
)
def test_k8s_runs_the_procfile_commands(kind, name, process):
    (container,) = containers(k8s(kind, name))
    assert container["command"] == procfile()[process]


def test_dockerfile_default_command_is_the_web_process():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert cmd
    assert json.loads(cmd.group(1)) == procfile()["web"]


def test_dockerfile_copies_every_package_it_installs():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, re.M))
    # devtools/ (dev runner, test helpers) stays out of the production image.
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {
        "tests",
        "bench",
        "devtools",
    }
    assert packages <= copied
    assert "devtools" not in copied
    assert "pyproject.toml" in copied


def test_every_variable_the_deploy_files_set_is_one_the_code_reads():
    names: dict[str, str] = {}
    for doc in k8s_documents():
        where = f"deploy/k8s {doc['kind']} {doc['metadata']['name']}"
        for key in (*doc.get("data", {}), *doc.get("stringData", {})):
            names[key] = where
        if doc["kind"] in ("Deployment", "Job"):
            for container in containers(doc):
                for var in container.get("env", []):
                    names[var["name"]] = where
    app = json.loads((DEPLOY / "heroku" / "app.json").read_text())
    for key in app["env"]:
        names[key] = "deploy/heroku/app.json"
    unknown = {name: where for name, where in names.items() if name not in known_variables()}
    assert unknown == {}


def test_k8s_processes_get_the_config_and_the_secret():
    config_map = k8s("ConfigMap", "statuspipe")
    secret = k8s("Secret", "statuspipe")
    for kind, name in [("Deployment", "statuspipe-web"), ("Deployment", "statuspipe-worker"),
                       ("Job", "statuspipe-migrate")]:  # fmt: skip
        (container,) = containers(k8s(kind, name))
        refs = container["envFrom"]
        assert {"configMapRef": {"name": config_map["metadata"]["name"]}} in refs
        assert {"secretRef": {"name": secret["metadata"]["name"]}} in refs
    # What the processes refuse to start without is in the one place meant for secrets.
    assert {"DATABASE_URL", "REDIS_URL", "TWILIO_AUTH_TOKEN"} <= set(secret["stringData"])


def test_heroku_app_runs_the_procfile_processes_and_migrates():
    app = json.loads((DEPLOY / "heroku" / "app.json").read_text())
    assert set(app["formation"]) <= set(procfile())
    assert app["scripts"]["postdeploy"] == shlex.join(procfile()["release"])
    required = {k for k, v in app["env"].items() if v.get("required")}
    assert {"TWILIO_AUTH_TOKEN", "PUBLIC_URL"} <= required
