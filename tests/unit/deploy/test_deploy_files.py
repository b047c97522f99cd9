"""The deploy files agree with the code and with each other: every Procfile role runs, with the
Procfile's exact command, on Heroku (app.json) and Kubernetes (deploy/k8s/); every variable they
set is one the code reads; the image holds what the commands import. No cluster or Docker engine
runs here, so drift is what can be caught: a role, a setting or a command that one file was not
told about. The roles come from the Procfile, never from a list in this file."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.procfile import read_procfile as procfile
from shared.config import Settings, settings_table

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"

# Read by ingest/gunicorn_conf.py, not by Settings: gunicorn's own knobs.
GUNICORN_VARIABLES = {"PORT", "WEB_CONCURRENCY", "GUNICORN_WORKER_CLASS", "GUNICORN_THREADS",
                      "GUNICORN_TIMEOUT", "GUNICORN_ACCESS_LOG",
                      "GUNICORN_MAX_REQUESTS"}  # fmt: skip
# Set by Heroku itself: the add-ons' URLs and the dyno's port.
HEROKU_PROVIDED = {"DATABASE_URL", "REDIS_URL", "PORT"}
# Custom resources: no schema in kubernetes-validate; checked field by field below.
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication"),
                ("monitoring.coreos.com/v1", "ServiceMonitor"),
                ("monitoring.coreos.com/v1", "PrometheusRule")}  # fmt: skip
# Oldest Kubernetes still commonly run, and the newest the schemas know.
K8S_VERSIONS = ("1.29.0", "1.37.0")


def roles() -> dict[str, list[str]]:
    return procfile()


def long_running_roles() -> list[str]:
    return [role for role in roles() if role != "release"]


def is_singleton(role: str) -> bool:
    """Celery beat enqueues every periodic job once per running copy: exactly one may run."""
    command = roles()[role]
    return command[0] == "celery" and "beat" in command[1:4]


def is_secret(name: str) -> bool:
    return bool(re.search(r"TOKEN|SECRET|PASSWORD|_KEYS$|BASIC_AUTH|SMTP_URL", name))


# --- Kubernetes documents ---------------------------------------------------------------------


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def manifest_files() -> list[Path]:
    return [K8S / name for name in kustomization()["resources"]]


def k8s_documents() -> list[dict[str, Any]]:
    docs = []
    for path in manifest_files():
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def k8s(kind: str, name: str) -> dict[str, Any]:
    for doc in k8s_documents():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name} in deploy/k8s")


def workloads() -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d["kind"] in ("Deployment", "Job")]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return pod_spec(doc)["containers"]


def workload_of(role: str) -> dict[str, Any]:
    return (
        k8s("Job", "statuspipe-migrate")
        if role == "release"
        else k8s("Deployment", f"statuspipe-{role}")
    )


def env_file_keys(path: Path) -> list[str]:
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    return [ln.partition("=")[0] for ln in lines if ln and not ln.startswith("#")]


def known_variables() -> set[str]:
    return {name for name, _, _ in settings_table()} | GUNICORN_VARIABLES


def test_gunicorn_variables_listed_here_are_the_ones_it_reads():
    conf = (ROOT / "ingest" / "gunicorn_conf.py").read_text()
    assert set(re.findall(r"environ\.get\(['\"](\w+)['\"]", conf)) == GUNICORN_VARIABLES


def test_kustomization_lists_every_manifest_and_only_existing_ones():
    listed = set(kustomization()["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("role", roles())
def test_every_procfile_role_runs_its_exact_command_on_kubernetes(role):
    (container,) = containers(workload_of(role))
    assert container["command"] == roles()[role]


def test_kubernetes_runs_nothing_the_procfile_does_not():
    commands = [c["command"] for doc in workloads() for c in containers(doc)]
    assert sorted(map(tuple, commands)) == sorted(map(tuple, roles().values()))


@pytest.mark.parametrize("role", [r for r in roles() if r != "release"])
def test_singletons_run_once_and_stop_before_their_successor_starts(role):
    deployment = workload_of(role)
    if not is_singleton(role):
        assert deployment["spec"].get("strategy", {}).get("type") != "Recreate"
        return
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in k8s_documents()
              if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")}  # fmt: skip
    assert deployment["metadata"]["name"] not in scaled


def test_the_beat_role_is_a_singleton():
    if "beat" not in roles():
        pytest.skip("no beat role in the Procfile")
    assert is_singleton("beat")
    assert not is_singleton("worker")


@pytest.mark.parametrize("doc", workloads(), ids=lambda d: d["metadata"]["name"])
def test_every_pod_is_locked_down_and_sized(doc):
    spec = pod_spec(doc)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec.get("automountServiceAccountToken") is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in spec["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        # The one writable place: every temp file the processes make (gunicorn, prometheus'
        # multiprocess directory, beat's schedule) goes to tempfile.gettempdir().
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert "emptyDir" in volumes[mount["name"]]
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}


@pytest.mark.parametrize("doc", workloads(), ids=lambda d: d["metadata"]["name"])
def test_every_process_gets_the_config_and_the_secret(doc):
    for container in containers(doc):
        assert {"configMapRef": {"name": "statuspipe"}} in container["envFrom"]
        assert {"secretRef": {"name": "statuspipe"}} in container["envFrom"]
    assert k8s("ConfigMap", "statuspipe")


def test_the_secret_template_holds_what_the_processes_refuse_to_start_without():
    keys = env_file_keys(K8S / "secret.env.example")
    assert {"DATABASE_URL", "REDIS_URL", "TWILIO_AUTH_TOKEN", "API_TOKEN"} <= set(keys)
    assert set(keys) <= known_variables()
    config = k8s("ConfigMap", "statuspipe")["data"]
    # A secret in the ConfigMap would be readable by anyone who may read config.
    assert [k for k in config if is_secret(k)] == []


def test_web_is_probed_served_and_scaled_on_cpu():
    web = k8s("Deployment", "statuspipe-web")
    (container,) = containers(web)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert ports["http"] == int(env["PORT"])
    # The grace period covers the preStop pause and gunicorn's own graceful timeout.
    import ingest.gunicorn_conf as gunicorn_conf

    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod_spec(web)["terminationGracePeriodSeconds"] > pause + gunicorn_conf.graceful_timeout

    service = k8s("Service", "statuspipe-web")
    assert (
        service["spec"]["selector"].items() <= web["spec"]["template"]["metadata"]["labels"].items()
    )
    ingress = k8s("Ingress", "statuspipe-web")
    assert ingress["spec"]["tls"][0]["secretName"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}

    hpa = k8s("HorizontalPodAutoscaler", "statuspipe-web")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "statuspipe-web"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2


def test_workers_scale_on_the_backlog_of_the_stream_and_group_the_code_uses():
    scaled = k8s("ScaledObject", "statuspipe-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "statuspipe-worker"
    assert scaled["spec"]["minReplicaCount"] >= 1  # a live worker takes over a dead one's batch
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis-streams"
    meta = trigger["metadata"]
    defaults = Settings.__dataclass_fields__
    assert meta["stream"] == defaults["stream_key"].default
    assert meta["consumerGroup"] == defaults["consumer_group"].default
    assert {"lagCount", "pendingEntriesCount", "streamLength"} & set(meta)
    auth = k8s("TriggerAuthentication", trigger["authenticationRef"]["name"])
    keys = env_file_keys(K8S / "keda-redis.env.example")
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["parameter"] in {"address", "host", "port", "username", "password"}
        assert ref["key"] in keys


def test_every_deployment_but_a_singleton_has_a_disruption_budget_that_selects_it():
    budgets = [d for d in k8s_documents() if d["kind"] == "PodDisruptionBudget"]
    for role in long_running_roles():
        labels = workload_of(role)["spec"]["template"]["metadata"]["labels"]
        matching = [b for b in budgets
                    if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]  # fmt: skip
        # A budget that kept a singleton's one pod up would block every node drain.
        assert len(matching) == (0 if is_singleton(role) else 1), role


def test_no_worker_runs_an_embedded_beat():
    for role, command in roles().items():
        assert "-B" not in command, role
        assert "--beat" not in command, role


def test_every_variable_the_deploy_files_set_is_one_the_code_reads():
    names: dict[str, str] = {}
    for doc in k8s_documents():
        where = f"deploy/k8s {doc['kind']} {doc['metadata']['name']}"
        for key in doc.get("data", {}):
            names[key] = where
        if doc["kind"] in ("Deployment", "Job"):
            for container in containers(doc):
                for var in container.get("env", []):
                    names[var["name"]] = where
    for key in env_file_keys(K8S / "secret.env.example"):
        names[key] = "deploy/k8s/secret.env.example"
    for key in app_json()["env"]:
        names[key] = "app.json"
    unknown = {name: where for name, where in names.items() if name not in known_variables()}
    assert unknown == {}


def test_the_service_monitor_scrapes_the_web_service_with_the_secret_token():
    path = DEPLOY / "prometheus" / "servicemonitor.yaml"
    if not path.exists():
        pytest.skip("no ServiceMonitor")
    monitor = yaml.safe_load(path.read_text())
    service = k8s("Service", "statuspipe-web")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    ports = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in ports
        token = endpoint.get("authorization", {}).get("credentials")
        if token:
            assert token["name"] == "statuspipe"
            assert token["key"] in env_file_keys(K8S / "secret.env.example")


# --- schemas: every manifest against the Kubernetes OpenAPI schemas, offline -----------------


def validate_strict(doc: dict[str, Any]) -> None:
    import kubernetes_validate

    if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
        return  # no schema shipped; the tests above check what statuspipe relies on
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        validate_strict(doc)


def test_the_custom_resources_are_only_the_known_ones():
    builtin_groups = ("v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2",
                      "networking.k8s.io/v1")  # fmt: skip
    for doc in k8s_documents():
        assert doc["apiVersion"] in builtin_groups or (doc["apiVersion"], doc["kind"]) in (
            CUSTOM_KINDS
        )


def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def test_kustomize_build_output_is_valid_and_sets_the_image():
    command = kustomize_command()
    if command is None:
        pytest.skip("neither kustomize nor kubectl is installed (optional)")
    out = subprocess.run([*command, str(K8S)], check=True, capture_output=True, text=True)
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert len(docs) == len(k8s_documents())
    (image,) = kustomization()["images"]
    for doc in docs:
        validate_strict(doc)
        if doc["kind"] in ("Deployment", "Job"):
            for container in containers(doc):
                assert container["image"] == f"{image['newName']}:{image['newTag']}"


# --- the image ---------------------------------------------------------------------------------


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def final_stage() -> str:
    return re.split(r"^FROM ", dockerfile(), flags=re.M)[-1]


def shipped_packages() -> set[str]:
    return {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {
        "tests",
        "bench",
        "devtools",
    }


def test_dockerfile_default_command_is_the_web_process():
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile(), re.M)
    assert cmd
    assert json.loads(cmd.group(1)) == roles()["web"]


def test_the_programs_of_every_procfile_command_are_installed_by_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = set(project["scripts"]) | {
        re.split(r"[<>=\[ ]", dep)[0] for dep in project["dependencies"]
    }
    assert {command[0] for command in roles().values()} <= installed


def test_dockerfile_copies_files_that_exist_and_every_shipped_package_but_devtools():
    copies = re.findall(r"^COPY (?!--from)(.+) (\S+)$", dockerfile(), re.M)
    sources = [src for srcs, _ in copies for src in srcs.split()]
    for src in sources:
        assert (ROOT / src).exists(), src
    assert shipped_packages() <= set(sources)
    assert "devtools" not in sources
    assert {"pyproject.toml", "README.md"} <= set(sources)


def test_dockerfile_is_multi_stage_pinned_and_runs_as_non_root_without_compilers():
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile(), re.M)
    assert base
    # An exact release (3.11.13-slim-bookworm) or a digest, never a moving tag like 3.11-slim.
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1))
    froms = re.findall(r"^FROM (\S+)", dockerfile(), re.M)
    assert len(froms) >= 2
    assert set(froms) == {"${PYTHON_IMAGE}"}
    final = final_stage()
    user = re.findall(r"^USER (\S+)$", final, re.M)
    assert user
    assert user[-1].split(":")[0].isdigit()
    assert user[-1].split(":")[0] != "0"
    for tool in ("gcc", "build-essential", "pip install", "apt-get install"):
        assert tool not in final
    python = re.match(r"python:(\d+\.\d+)", base.group(1))
    assert python
    # Heroku's buildpack reads .python-version: the same Python as the image.
    assert (ROOT / ".python-version").read_text().strip() == python.group(1)


def dockerignored(path: str) -> bool:
    """Docker's rule: the last pattern that matches a path or one of its parents wins."""
    ignored = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/"))
               for p in prefixes):  # fmt: skip
            ignored = not negate
    return ignored


def test_dockerignore_keeps_secrets_and_dev_files_out_and_what_is_copied_in():
    for path in (".env", "var/dev.env", ".git/config", ".venv/bin/python", "devtools/run.py",
                 "tests/conftest.py", "bench/drain.py", "deploy/k8s/statuspipe.env",
                 "ingest/__pycache__/x.pyc"):  # fmt: skip
        assert dockerignored(path), path
    for src in ("pyproject.toml", "README.md", "shared/config.py", "ingest/wsgi.py", "cli/db.py",
                "workers/celery_app.py",
                "shared/migrations/versions/0001_initial_schema.py"):  # fmt: skip
        assert not dockerignored(src), src


# --- Heroku ------------------------------------------------------------------------------------


def app_json() -> dict[str, Any]:
    return json.loads((ROOT / "app.json").read_text())


def test_app_json_sets_every_variable_the_code_reads_and_describes_it():
    env = app_json()["env"]
    expected = {name for name, _, _ in settings_table()} - HEROKU_PROVIDED
    missing = sorted(expected - set(env))
    assert missing == [], "add them to app.json with a description"
    for name, entry in env.items():
        assert entry.get("description"), name


def test_app_json_generates_or_asks_for_secrets_and_never_holds_one():
    env = app_json()["env"]
    for name, entry in env.items():
        if is_secret(name):
            assert "value" not in entry, name
    assert env["API_TOKEN"]["generator"] == "secret"
    if "METRICS_TOKEN" in env:  # a Heroku app is reachable from the internet
        assert env["METRICS_TOKEN"]["generator"] == "secret"
    required = {k for k, v in env.items() if v.get("required")}
    assert {"TWILIO_AUTH_TOKEN", "PUBLIC_URL"} <= required
    # Heroku Redis serves rediss:// with a self-signed certificate.
    assert env["REDIS_TLS_CERT_REQS"]["value"] == "none"


def test_app_json_runs_every_procfile_role_and_migrates_in_the_release_phase():
    app = app_json()
    formation = app["formation"]
    assert set(formation) == set(long_running_roles())
    for role, dynos in formation.items():
        assert dynos["quantity"] >= 1
        if is_singleton(role):
            assert dynos["quantity"] == 1
        # Eco and Basic dynos run at most one dyno per process type.
        if dynos["quantity"] > 1:
            assert dynos["size"] not in ("eco", "basic")
    assert roles()["release"] == ["statuspipe", "migrate"]
    # The release phase migrates on every deploy, the first included; no second way.
    assert "migrate" not in json.dumps(app.get("scripts", {}))
    plans = [a["plan"] for a in app["addons"]]
    assert any(p.startswith("heroku-postgresql:") for p in plans)
    assert any(p.startswith("heroku-redis:") for p in plans)
    assert "heroku/python" in [b["url"] for b in app["buildpacks"]]
    assert (ROOT / "requirements.txt").read_text().split() == ["."]


def test_app_json_is_where_the_deploy_button_looks_and_the_docs_point_at_it():
    assert not (DEPLOY / "heroku").exists()
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert "herokucdn.com/deploy/button.svg" in docs
    assert "docs/deploy.md" in (ROOT / "README.md").read_text()
