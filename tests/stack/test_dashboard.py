"""Static checks of the Grafana dashboard and its provisioning.

What a typo would break silently in Grafana (a panel with "datasource not
found", a dashboard that is never loaded, a home page that 404s, a protocol
drawn in two colours) is checked here against the files compose mounts. The
PromQL itself is run against real data in test_dashboard_promql.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from ruamel.yaml import YAML

from imgbench.observe.metrics import ReceiverMetrics, TransmitterMetrics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DASHBOARD = ROOT / "grafana" / "dashboards" / "imgbench.json"
DATASOURCES = ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yml"
PROVIDERS = ROOT / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
PROMETHEUS_CONFIG = ROOT / "prometheus" / "prometheus.yml"
PROTOCOLS = ("websocket", "grpc")
JOBS = {"imgbench-receiver": ReceiverMetrics, "imgbench-transmitter": TransmitterMetrics}


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # panels inside collapsed rows
    return out


@pytest.fixture(scope="module")
def grafana_service() -> dict[str, Any]:
    service: dict[str, Any] = load_yaml(COMPOSE)["services"]["grafana"]
    return service


def grafana_mounts(service: dict[str, Any]) -> dict[PurePosixPath, Path]:
    """Container path -> repository path of the grafana service's bind mounts."""
    mounts = {}
    for volume in service["volumes"]:
        source, target, *_ = volume.split(":")
        assert source.startswith("./"), f"grafana mounts {source}, not a repository path"
        mounts[PurePosixPath(target)] = ROOT / source
    return mounts


def resolve_in_container(mounts: dict[PurePosixPath, Path], path: str) -> Path | None:
    """The repository file that a container path of the grafana service maps to."""
    wanted = PurePosixPath(path)
    for target, source in mounts.items():
        if wanted == target or target in wanted.parents:
            return source.joinpath(*wanted.relative_to(target).parts)
    return None


# ---- the dashboard itself ---------------------------------------------------------------


def test_dashboard_identity(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "imgbench"
    assert dashboard["title"]
    assert "id" not in dashboard or dashboard["id"] is None, "a fixed id clashes on import"


def test_panel_ids_are_unique(panels: list[dict[str, Any]]) -> None:
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"


def test_panels_fit_the_grid_without_overlapping(panels: list[dict[str, Any]]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_panel_has_a_description(panels: list[dict[str, Any]]) -> None:
    """Every panel but rows: Grafana's schema gives rows no description (never shown)."""
    rows = [p for p in panels if p["type"] == "row"]
    assert rows and not [r["title"] for r in rows if "description" in r], "a row description"
    short = [
        p["title"]
        for p in panels
        if p["type"] != "row" and len(p.get("description", "").strip()) < 40
    ]
    assert not short, f"panels without a real description: {short}"


def test_every_panel_with_queries_has_a_unit(panels: list[dict[str, Any]]) -> None:
    for panel in panels:
        if panel.get("targets") and panel["type"] != "heatmap":
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
        if panel["type"] == "heatmap":
            assert panel["options"]["yAxis"].get("unit") == "s", panel["title"]


def test_every_target_has_an_expression_and_unique_ref(panels: list[dict[str, Any]]) -> None:
    for panel in panels:
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel.get("targets", []):
            assert target.get("expr", "").strip(), f"{panel['title']} {target['refId']}"


# ---- datasources ---------------------------------------------------------------------------


def used_datasource_uids(obj: Any) -> set[str]:
    """Every ``datasource.uid`` referenced anywhere in ``obj`` (Grafana built-ins excluded)."""
    found: set[str] = set()
    if isinstance(obj, dict):
        ds = obj.get("datasource")
        if isinstance(ds, dict) and ds.get("type") != "grafana":
            found.add(str(ds.get("uid")))
        elif isinstance(ds, str):
            found.add(ds)  # legacy reference by name/uid
        for value in obj.values():
            found |= used_datasource_uids(value)
    elif isinstance(obj, list):
        for value in obj:
            found |= used_datasource_uids(value)
    return found


def provisioned_datasources() -> dict[str, dict[str, Any]]:
    data = load_yaml(DATASOURCES)
    assert data["apiVersion"] == 1
    return {ds["uid"]: ds for ds in data["datasources"]}


def test_every_datasource_uid_is_provisioned(dashboard: dict[str, Any]) -> None:
    used = used_datasource_uids(dashboard)
    assert used, "the dashboard references no datasource"
    assert used <= set(provisioned_datasources()), f"unknown datasource uids: {used}"


def test_datasources_match_the_stack() -> None:
    datasources = provisioned_datasources()
    prometheus, jaeger = datasources["prometheus"], datasources["jaeger"]
    assert prometheus["type"] == "prometheus" and jaeger["type"] == "jaeger"
    services = load_yaml(COMPOSE)["services"]
    assert prometheus["url"] == "http://prometheus:9090" and "prometheus" in services
    assert jaeger["url"] == "http://jaeger:16686" and "jaeger" in services
    # timeInterval equals the scrape interval, so $__rate_interval covers 4 scrapes.
    scrape = load_yaml(PROMETHEUS_CONFIG)["global"]["scrape_interval"]
    assert prometheus["jsonData"]["timeInterval"] == scrape == "1s"
    (link,) = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert link == {**link, "name": "trace_id", "datasourceUid": "jaeger"}


def test_exemplar_label_is_the_one_the_services_write() -> None:
    # What the services expose, not how the source spells it: one image through each
    # side's metrics, then the OpenMetrics text Prometheus scrapes (exemplars only
    # travel in that format).
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    receiver_registry, transmitter_registry = CollectorRegistry(), CollectorRegistry()
    ReceiverMetrics(receiver_registry).image_received("grpc", "unary", 0.002, 1024, trace_id)
    TransmitterMetrics(transmitter_registry).image_sent("grpc", "unary", 0.003, trace_id)
    for registry in (receiver_registry, transmitter_registry):
        text = openmetrics_latest(registry).decode()
        exemplars = re.findall(r' # \{(\w+)="([0-9a-f]+)"\}', text)
        assert exemplars == [("trace_id", trace_id)], text


# ---- dashboard provider and home dashboard ------------------------------------------


def test_provider_path_is_where_compose_mounts_the_dashboard(
    grafana_service: dict[str, Any],
) -> None:
    (provider,) = load_yaml(PROVIDERS)["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    mounts = grafana_mounts(grafana_service)
    source = resolve_in_container(mounts, path)
    assert source is not None, f"compose mounts nothing at the provider path {path}"
    assert source.resolve() == DASHBOARD.parent.resolve()
    # ... and the provider file itself is mounted where Grafana reads providers.
    assert resolve_in_container(mounts, "/etc/grafana/provisioning/dashboards") == PROVIDERS.parent
    assert resolve_in_container(mounts, "/etc/grafana/provisioning/datasources") == (
        DATASOURCES.parent
    )


def test_home_dashboard_path_exists_in_the_mounted_tree(grafana_service: dict[str, Any]) -> None:
    env = grafana_service["environment"]
    home = resolve_in_container(
        grafana_mounts(grafana_service), env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    )
    assert home is not None and home.is_file(), "the home dashboard is not mounted"
    assert json.loads(home.read_text())["uid"] == "imgbench"


def test_anonymous_viewers(grafana_service: dict[str, Any]) -> None:
    env = grafana_service["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


# ---- queries -----------------------------------------------------------------------------

# Exported names, not the recording rules (level:metric:operations) built from them.
SELECTOR = re.compile(r"(?<![\w:])((?:imgbench|process)_[a-z_]+)(?![\w:])\s*(\{[^}]*\})?")


def exported_names(registry: CollectorRegistry) -> set[str]:
    names = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names


def test_queries_use_exported_metrics_of_the_selected_job(panels: list[dict[str, Any]]) -> None:
    exported = {job: exported_names(cls().registry) for job, cls in JOBS.items()}
    for panel in panels:
        for target in panel.get("targets", []):
            for name, matchers in SELECTOR.findall(target["expr"]):
                where = f"{panel['title']}: {name}{matchers}"
                job = re.search(r'job\s*(=~?)\s*"([^"]*)"', matchers)
                assert job, f"{where}: no job matcher (both services export some names)"
                op, value = job.groups()
                jobs = [j for j in JOBS if re.fullmatch(value, j)] if op == "=~" else [value]
                assert jobs and set(jobs) <= set(JOBS), f"{where}: unknown job"
                for j in jobs:
                    assert name in exported[j], f"{where}: {j} does not export {name}"


def test_prometheus_job_names_are_the_dashboards() -> None:
    jobs = [c["job_name"] for c in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]]
    assert sorted(jobs) == sorted(JOBS)


# ---- colours -------------------------------------------------------------------------------


def colour_claims(panel: dict[str, Any]) -> list[tuple[str, str]]:
    """``(protocol, colour)`` pairs that a panel's overrides, mappings or options assert."""
    claims = []
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        subject = str(override["matcher"].get("options", ""))
        for prop in override["properties"]:
            if prop["id"] == "color":
                claims += [(p, prop["value"]["fixedColor"]) for p in PROTOCOLS if p in subject]
            if prop["id"] == "mappings":
                for mapping in prop["value"]:
                    pattern = str(mapping["options"].get("pattern", ""))
                    colour = mapping["options"]["result"].get("color")
                    claims += [(p, colour) for p in PROTOCOLS if p in pattern and colour]
    if panel["type"] == "heatmap":
        exprs = " ".join(t["expr"] for t in panel["targets"])
        for p in PROTOCOLS:
            if f'protocol="{p}"' in exprs:
                claims.append((p, panel["options"]["color"]["fill"]))
    return claims


def shows_protocols(panel: dict[str, Any]) -> bool:
    return any(
        "{{protocol}}" in t.get("legendFormat", "") or '"protocol"' in t["expr"]
        for t in panel.get("targets", [])
    )


def test_each_protocol_has_one_colour_everywhere(panels: list[dict[str, Any]]) -> None:
    colours: dict[str, set[str]] = {p: set() for p in PROTOCOLS}
    for panel in panels:
        for protocol, colour in colour_claims(panel):
            colours[protocol].add(colour.upper())
    assert all(len(c) == 1 for c in colours.values()), colours
    assert colours["websocket"] != colours["grpc"]


def test_every_protocol_panel_colours_both_protocols(panels: list[dict[str, Any]]) -> None:
    for panel in panels:
        if panel["type"] == "heatmap":
            assert colour_claims(panel), f"{panel['title']}: heatmap not in its protocol's colour"
        elif shows_protocols(panel):
            claimed = {p for p, _ in colour_claims(panel)}
            assert claimed == set(PROTOCOLS), f"{panel['title']}: colours only for {claimed}"


def test_heatmaps_cover_both_protocols_alike(panels: list[dict[str, Any]]) -> None:
    heatmaps = [p for p in panels if p["type"] == "heatmap"]
    exprs = sorted(p["targets"][0]["expr"] for p in heatmaps)
    assert len(exprs) == 2
    assert exprs[0].replace('"grpc"', '"websocket"') == exprs[1], "heatmaps differ beyond protocol"
