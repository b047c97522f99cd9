"""deploy/prometheus/ agrees with what GET /metrics exports: every series an alert rule or the
scrape config names is one the app serves, so a renamed metric cannot silence an alert."""

from __future__ import annotations

import re
from pathlib import Path

import fakeredis
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from ingest.app import create_app
from shared.config import load_settings
from shared.models import Base

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "deploy" / "prometheus"


def exported_names(tmp_path) -> set[str]:
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    settings = load_settings(
        {"SIGNATURE_MODE": "off", "REDIS_URL": "redis://x", "DATABASE_URL": url, "API_TOKEN": "t"}
    )
    client = create_app(settings, redis_client=fakeredis.FakeRedis()).test_client()
    text = client.get("/metrics").data.decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_every_metric_the_alert_rules_use_is_exported(tmp_path):
    exported = exported_names(tmp_path)
    assert "statuspipe_dead_letter_rows" in exported  # the database answered
    (group,) = yaml.safe_load((PROMETHEUS / "alerts.yaml").read_text())["groups"]
    assert {r["alert"] for r in group["rules"]} >= {
        "StatuspipeBacklogGrowing",
        "StatuspipeLagHigh",
        "StatuspipeDeadLetters",
    }
    for rule in group["rules"]:
        used = set(re.findall(r"\bstatuspipe_\w+", rule["expr"]))
        assert used, rule["alert"]
        assert used <= exported, f"{rule['alert']} uses {used - exported}"
        assert rule["labels"]["severity"] in {"warning", "critical"}


def test_the_scrape_targets_are_the_web_service_and_its_port():
    web = {d["kind"]: d for d in yaml.safe_load_all((ROOT / "deploy/k8s/web.yaml").read_text())}
    service = web["Service"]
    (monitor,) = yaml.safe_load_all((PROMETHEUS / "servicemonitor.yaml").read_text())
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    (job,) = yaml.safe_load((PROMETHEUS / "scrape.yaml").read_text())["scrape_configs"]
    keep = job["relabel_configs"][0]
    assert keep["regex"] == f"{service['metadata']['name']}:{endpoint['port']}".replace(":", ";")
