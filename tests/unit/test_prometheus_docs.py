"""The alert rules and the Grafana dashboard in docs/ use only metric names the endpoint writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
SOURCE = Path(__file__).resolve().parents[2] / "queues" / "prometheus.py"
NAME = re.compile(r"\bbullmq_[a-z_]+[a-z]\b")


def written() -> set[str]:
    return {name for name in NAME.findall(SOURCE.read_text()) if not name.endswith("dashboard")}


def test_the_grafana_dashboard_and_the_alert_rules_name_written_metrics() -> None:
    dashboard = json.loads((DOCS / "grafana-bullmq.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in NAME.findall(expr)}
    rules = (DOCS / "prometheus.md").read_text().split("## Alert rules", 1)[1]
    used |= {name for name in NAME.findall(rules.split("Not yet exported", 1)[0])}
    assert used and used <= written(), used - written()
