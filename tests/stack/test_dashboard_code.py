"""The dashboard is generated from grafana/dashboard.py and matches Grafana's schema.

* Regenerating it changes nothing (the committed JSON is the generator's output).
* Every field is one the pinned grafana-foundation-sdk's types know: the dashboard,
  and each panel's options and custom field config decoded with its plugin's model,
  re-encode to the same JSON (a field the types lack would vanish on the way).
* Facts of Grafana 12.4's schema (@grafana/schema 12.4.0, the version compose runs)
  that the SDK build lags behind on: table options have no ``footer``, rows have no
  ``description``.
* The fixes of issue 13: the run band holds at any step, a verdict panel reads a
  recording rule that exists, and runs are annotated.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "grafana" / "dashboard.py"
DASHBOARD = ROOT / "grafana" / "dashboards" / "imgbench.json"
RULES = ROOT / "prometheus" / "rules" / "imgbench.rules.yml"

#: TableOptions of @grafana/schema 12.4.0 (dist/types/common/common.gen.d.ts).
TABLE_OPTIONS_12_4 = {
    "cellHeight",
    "disableKeyboardEvents",
    "enablePagination",
    "frameIndex",
    "frozenColumns",
    "maxRowHeight",
    "showHeader",
    "showTypeIcons",
    "sortBy",
}
#: RowPanel of @grafana/schema 12.4.0 (dist/types/raw/dashboard/x/types.gen.d.ts).
ROW_FIELDS_12_4 = {"collapsed", "datasource", "gridPos", "id", "panels", "repeat", "title", "type"}


def load_generator(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """grafana/dashboard.py loaded as its script run sees it: its folder (``panels``) importable."""
    monkeypatch.syspath_prepend(str(GENERATOR.parent))
    spec = importlib.util.spec_from_file_location("imgbench_dashboard_generator", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def panels_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in data["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def sdk_json(obj: Any) -> Any:
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    return json.loads(json.dumps(obj, cls=JSONEncoder))


def test_regenerating_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_generator(monkeypatch).render() == DASHBOARD.read_text(encoding="utf-8"), (
        "grafana/dashboards/imgbench.json is stale: run python grafana/dashboard.py"
    )


def test_check_mode_detects_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "imgbench.json"
    stale.write_text(DASHBOARD.read_text(encoding="utf-8").replace("Throughput", "Thruput"))
    argv = [sys.executable, str(GENERATOR), "--check", "--output"]
    assert subprocess.run([*argv, str(stale)], capture_output=True).returncode == 1
    assert subprocess.run([*argv, str(DASHBOARD)], capture_output=True).returncode == 0


def test_dashboard_round_trips_through_the_sdk_types(dashboard: dict[str, Any]) -> None:
    from grafana_foundation_sdk.models.dashboard import Dashboard

    assert sdk_json(Dashboard.from_json(dashboard)) == dashboard


def test_hand_written_fields_outside_the_schema_are_caught(dashboard: dict[str, Any]) -> None:
    """The round trip can fail: a row description (the old JSON had four) is dropped."""
    from grafana_foundation_sdk.models.dashboard import Dashboard

    broken = json.loads(json.dumps(dashboard))
    broken["panels"][0]["description"] = "never shown"
    assert sdk_json(Dashboard.from_json(broken)) != broken


def test_panel_options_round_trip_through_their_plugin_types(dashboard: dict[str, Any]) -> None:
    for panel in panels_of(dashboard):
        if panel["type"] == "row":
            continue
        model = importlib.import_module(f"grafana_foundation_sdk.models.{panel['type']}")
        options = sdk_json(model.Options.from_json(panel["options"]))
        if panel["type"] == "table":
            # The SDK's next build still defaults the footer Grafana 12.4 dropped.
            options.pop("footer", None)
        assert options == panel["options"], panel["title"]
        custom = panel["fieldConfig"]["defaults"].get("custom")
        if custom is not None:
            assert sdk_json(model.FieldConfig.from_json(custom)) == custom, panel["title"]


def test_no_fields_grafana_12_4_lacks(dashboard: dict[str, Any]) -> None:
    for panel in panels_of(dashboard):
        if panel["type"] == "table":
            assert set(panel["options"]) <= TABLE_OPTIONS_12_4, panel["title"]
        if panel["type"] == "row":
            assert set(panel) <= ROW_FIELDS_12_4, panel["title"]


def test_run_band_survives_zooming_out(dashboard: dict[str, Any]) -> None:
    bands = [
        t["expr"]
        for p in panels_of(dashboard)
        for t in p.get("targets", [])
        if t.get("legendFormat") == "run in progress"
    ]
    assert len(bands) == 2
    for expr in bands:
        assert re.fullmatch(
            r'max_over_time\(imgbench_runs_in_progress\{job="imgbench-transmitter"\}'
            r"\[\$__interval\]\)",
            expr,
        ), expr


def recorded_names() -> set[str]:
    groups = YAML(typ="safe").load(RULES.read_text())["groups"]
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


def test_verdict_reads_a_recording_rule_that_exists(dashboard: dict[str, Any]) -> None:
    (verdict,) = [p for p in panels_of(dashboard) if p["title"].startswith("Verdict")]
    (target,) = verdict["targets"]
    # The rule's series, filtered by the dashboard's direction variable (one verdict each).
    rule, selector = target["expr"].split("{", 1)
    assert selector == 'direction=~"$direction"}'
    assert target["instant"] and rule in recorded_names()
    assert "websocket_over_grpc" in target["expr"]
    every = {
        name
        for p in panels_of(dashboard)
        for t in p.get("targets", [])
        for name in re.findall(r"\b[a-z_]+:[a-z0-9_:]+", t["expr"])
    }
    assert every <= recorded_names(), every - recorded_names()


def test_runs_are_annotated(dashboard: dict[str, Any]) -> None:
    annotations = {a["name"]: a for a in dashboard["annotations"]["list"]}
    runs = annotations["Runs"]
    assert runs["enable"] and runs["datasource"] == {"type": "prometheus", "uid": "prometheus"}
    assert "imgbench_runs_in_progress" in runs["expr"] and runs["expr"].endswith("> 0")


def test_direction_variable_filters_every_metric_that_carries_the_label(
    dashboard: dict[str, Any],
) -> None:
    """Push and upload runs are told apart: ``$direction`` (All by default) on every such query."""
    from imgbench.observe.metrics import PMD, ReceiverMetrics, TransmitterMetrics

    (variable,) = dashboard["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "direction",
        "custom",
        "upload,push",
    )
    assert variable["includeAll"] is True and variable["allValue"] == "upload|push"
    assert "direction" in PMD
    with_direction = {
        m.name
        for metrics in (ReceiverMetrics(), TransmitterMetrics())
        for m in metrics.registry.collect()
        if any("direction" in s.labels for s in m.samples)
    }
    checked = 0
    for panel in panels_of(dashboard):
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            for name in re.findall(r"\b(imgbench_[a-z_]+?)(?:_total|_bucket|_sum|_count)?\{", expr):
                if name in with_direction:
                    checked += 1
                    assert 'direction=~"$direction"' in expr, (panel["title"], expr)
    assert checked >= 10
