"""What the panels ask Prometheus: the data source, the selectors, one target builder."""

from __future__ import annotations

from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import prometheus as pm

PROMETHEUS = common.DataSourceRef(type_val="prometheus", uid="prometheus")
RECEIVER = 'job="imgbench-receiver"'
TRANSMITTER = 'job="imgbench-transmitter"'
BOTH_JOBS = 'job=~"imgbench-receiver|imgbench-transmitter"'
#: Recording rule of prometheus/rules/imgbench.rules.yml: median websocket / median grpc.
VERDICT_RULE = "instance:imgbench_run_transmission_seconds_p50:websocket_over_grpc"
#: The direction variable's matcher, on every metric that carries the label (the
#: per-image histograms and counters and the last-run gauges): uploads, pushes or both.
DIRECTION = 'direction=~"$direction"'
RECEIVER_RUNS = f"{RECEIVER},{DIRECTION}"
TRANSMITTER_RUNS = f"{TRANSMITTER},{DIRECTION}"
#: A run is in progress while the transmitter's gauge is 1. max_over_time over the
#: step keeps a run visible whatever the step: a plain gauge query samples one
#: instant per step, so at 15 s or 30 s steps a 10 s run fell between samples.
RUN_IN_PROGRESS = f"max_over_time(imgbench_runs_in_progress{{{TRANSMITTER}}}[$__interval])"


def query(
    expr: str,
    *,
    ref: str = "A",
    legend: str = "{{protocol}} {{mode}}",
    instant: bool = False,
    table_format: bool = False,
    heatmap_format: bool = False,
    exemplar: bool = False,
) -> prom.Dataquery:
    """A Prometheus target: instant (stat/table) or range (time series)."""
    q = (
        prom.Dataquery()
        .datasource(PROMETHEUS)
        .ref_id(ref)
        .editor_mode(pm.QueryEditorMode.CODE)
        .expr(expr)
        .legend_format(legend)
        .exemplar(exemplar)
    )
    if table_format:
        q = q.format(pm.PromQueryFormat.TABLE)
    elif heatmap_format:
        q = q.format(pm.PromQueryFormat.HEATMAP)
    else:
        q = q.format(pm.PromQueryFormat.TIME_SERIES)
    return q.instant() if instant else q.range()
