"""The imgbench Grafana dashboard, as code (grafana-foundation-sdk builders).

Run ``python grafana/dashboard.py`` to rewrite ``grafana/dashboards/imgbench.json``
(the file compose and the Kubernetes ``monitoring`` overlay provision), or
``python grafana/dashboard.py --check`` to exit 1 when the committed JSON is not
what this code generates. The JSON is committed so that Grafana needs no Python;
a test regenerates it and compares (like the protobuf stubs).

The SDK is pinned exactly in pyproject.toml: its builders and types are generated
from Grafana's schema, and its ``next`` build (the newest; no build carries a 12.x
tag on PyPI) is the one closest to the Grafana 12.4 that compose runs. Where that
build still knows a field that Grafana 12.4 dropped (the table panel's
``options.footer``), :func:`build` removes it, and tests/stack/test_dashboard_code.py
checks the output against both the SDK's types and the 12.4 facts we rely on.

Colours: websocket is always #1F77B4 (blue), grpc always #FF7F0E (orange), in
every panel (tests/stack/test_dashboard.py checks it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import barchart, heatmap, stat, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog import builder as cog
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models import prometheus as pm

OUTPUT = Path(__file__).resolve().parent / "dashboards" / "imgbench.json"

UID = "imgbench"
PROMETHEUS = common.DataSourceRef(type_val="prometheus", uid="prometheus")
RECEIVER = 'job="imgbench-receiver"'
TRANSMITTER = 'job="imgbench-transmitter"'
BOTH_JOBS = 'job=~"imgbench-receiver|imgbench-transmitter"'
COLOURS = {"websocket": "#1F77B4", "grpc": "#FF7F0E"}
JOB_COLOURS = {"imgbench-receiver": "#2CA02C", "imgbench-transmitter": "#9467BD"}
BAND_COLOUR = "#7F7F7F"
#: The panel builders that take colour overrides.
Coloured = TypeVar("Coloured", stat.Panel, barchart.Panel, timeseries.Panel)
#: Recording rule of prometheus/rules/imgbench.rules.yml: median websocket / median grpc.
VERDICT_RULE = "instance:imgbench_run_transmission_seconds_p50:websocket_over_grpc"
#: A run is in progress while the transmitter's gauge is 1. max_over_time over the
#: step keeps a run visible whatever the step: a plain gauge query samples one
#: instant per step, so at 15 s or 30 s steps a 10 s run fell between samples.
#: The direction variable's matcher, on every metric that carries the label (the
#: per-image histograms and counters and the last-run gauges): uploads, pushes or both.
DIRECTION = 'direction=~"$direction"'
RECEIVER_RUNS = f"{RECEIVER},{DIRECTION}"
TRANSMITTER_RUNS = f"{TRANSMITTER},{DIRECTION}"
RUN_IN_PROGRESS = f"max_over_time(imgbench_runs_in_progress{{{TRANSMITTER}}}[$__interval])"


# ---- small helpers -----------------------------------------------------------------------


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


def direction_variable() -> db.CustomVariable:
    """``$direction``: upload (transmitter is the client), push (transmitter is the server), All."""
    every = dm.VariableOption(selected=True, text="All", value="$__all")
    return (
        db.CustomVariable("direction")
        .label("direction")
        .description(
            "Which way the images went: upload (the transmitter is the client) or push (the"
            " transmitter is the server, WebSocket frames unmasked). Filters every panel whose"
            " metric carries the direction label; the mode label shows push runs as 'push'."
        )
        .values("upload,push")
        .include_all(True)
        .all_value("upload|push")
        .multi(False)
        .current(every)
        .options(
            [
                every,
                dm.VariableOption(selected=False, text="upload", value="upload"),
                dm.VariableOption(selected=False, text="push", value="push"),
            ]
        )
    )


def fixed(colour: str) -> dm.DynamicConfigValue:
    return dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": colour})


def protocol_colours(panel: Coloured) -> Coloured:
    """Series whose name starts with the protocol get the protocol's colour."""
    for protocol, colour in COLOURS.items():
        panel = panel.override_by_regexp(f"^{protocol}", [fixed(colour)])
    return panel


def dashed(panel: timeseries.Panel, regexp: str) -> timeseries.Panel:
    style = {"fill": "dash", "dash": [10, 10]}
    return panel.override_by_regexp(
        regexp, [dm.DynamicConfigValue(id_val="custom.lineStyle", value=style)]
    )


def text_thresholds() -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=None, color="text")])
    )


def legend_bottom() -> cb.VizLegendOptions:
    return (
        cb.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    )


def tooltip_multi() -> cb.VizTooltipOptions:
    return cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.NONE)


# ---- panels ------------------------------------------------------------------------------


def last_run_stat(
    title: str, description: str, expr: str, unit: str, *, legend: str = "{{protocol}} {{mode}}"
) -> stat.Panel:
    """One value per protocol (and mode), coloured by protocol, from an instant query."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .height(5)
        .span(6)
        .with_target(query(expr, legend=legend, instant=True))
        .unit(unit)
        .no_value("no run yet")
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.FIXED).fixed_color("text"))
        .mappings([])
        .thresholds(text_thresholds())
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .orientation(common.VizOrientation.HORIZONTAL)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .wide_layout(True)
        .show_percent_change(False)
    )
    if unit == "none":
        panel = panel.decimals(0)
    return protocol_colours(panel)


def verdict() -> stat.Panel:
    """The answer of the last run in one number: median websocket / median grpc."""
    return (
        stat.Panel()
        .title("Verdict: websocket median / grpc median")
        .description(
            "Receiver, last run: the exact median per-image transmission time of websocket"
            " divided by that of grpc (recording rule " + VERDICT_RULE + ", from the"
            " last-run gauges; with several modes per protocol, the mode that completed"
            " last; one value per direction, upload and push, never mixed). Above 1: grpc"
            " was faster; below 1: websocket was faster. One run's"
            " ratio, without an interval: the run report gives the bound (repeat runs"
            " before trusting a difference of a few percent)."
        )
        .datasource(PROMETHEUS)
        .height(5)
        .span(24)
        .with_target(
            query(
                f"{VERDICT_RULE}{{{DIRECTION}}}",
                legend="websocket / grpc {{direction}}",
                instant=True,
            )
        )
        .unit("suffix:\u00d7")  # x as in "1.2x as long"
        .decimals(2)
        .no_value("no run yet")
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .thresholds(
            db.ThresholdsConfig()
            .mode(dm.ThresholdsMode.ABSOLUTE)
            # websocket faster (< 1): its colour; grpc faster (> 1): its colour.
            .steps(
                [
                    dm.Threshold(value=None, color=COLOURS["websocket"]),
                    dm.Threshold(value=1.0, color=COLOURS["grpc"]),
                ]
            )
        )
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .orientation(common.VizOrientation.HORIZONTAL)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .wide_layout(True)
        .show_percent_change(False)
    )


def per_image_bars() -> barchart.Panel:
    sequence = "sequence\\series"
    transformations = [
        dm.DataTransformerConfig(
            id_val="groupingToMatrix",
            options={
                "columnField": "series",
                "rowField": "sequence",
                "valueField": "Value",
                "emptyValue": "null",
            },
        ),
        # The sequence labels are strings: sort them as numbers, then label the axis.
        dm.DataTransformerConfig(
            id_val="convertFieldType",
            options={
                "fields": {},
                "conversions": [{"targetField": sequence, "destinationType": "number"}],
            },
        ),
        dm.DataTransformerConfig(
            id_val="sortBy",
            options={"fields": {}, "sort": [{"field": sequence, "desc": False}]},
        ),
        dm.DataTransformerConfig(
            id_val="convertFieldType",
            options={
                "fields": {},
                "conversions": [{"targetField": sequence, "destinationType": "string"}],
            },
        ),
        dm.DataTransformerConfig(id_val="organize", options={"renameByName": {sequence: "image"}}),
    ]
    panel = (
        barchart.Panel()
        .title("Per-image transmission time, last run")
        .description(
            "Receiver, last run: the transmission time of every measured image, by sequence"
            " number (the first 100 images), both protocols side by side. Spikes show"
            " individual slow images; a rising trend shows the run slowing down. Exact"
            " per-image values from imgbench_run_image_transmission_seconds."
        )
        .datasource(PROMETHEUS)
        .height(9)
        .span(24)
        .with_target(
            query(
                "label_join(imgbench_run_image_transmission_seconds{"
                + RECEIVER_RUNS
                + '}, "series", " ", "protocol", "mode")',
                legend="",
                instant=True,
                table_format=True,
            )
        )
        .transformations(transformations)
        .unit("s")
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.PALETTE_CLASSIC))
        .fill_opacity(85)
        .line_width(0)
        .gradient_mode(common.GraphGradientMode.NONE)
        .axis_placement(common.AxisPlacement.AUTO)
        .axis_label("transmission time")
        .axis_soft_min(0)
        .x_field("image")
        .orientation(common.VizOrientation.VERTICAL)
        .group_width(0.8)
        .bar_width(0.95)
        .show_value(common.VisibilityMode.NEVER)
        .stacking(common.StackingMode.NONE)
        .x_tick_label_rotation(0)
        .x_tick_label_spacing(0)
        .legend(legend_bottom())
        .tooltip(tooltip_multi())
    )
    return protocol_colours(panel)


def stats_table(title: str, description: str, metric: str, job: str) -> table.Panel:
    """Exact min/p50/p90/p99/max/mean of the last run, one row per protocol and mode."""
    transformations = [
        dm.DataTransformerConfig(
            id_val="groupingToMatrix",
            options={
                "columnField": "stat",
                "rowField": "series",
                "valueField": "Value",
                "emptyValue": "null",
            },
        ),
        dm.DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": {},
                "indexByName": {
                    "series\\stat": 0,
                    "min": 1,
                    "p50": 2,
                    "p90": 3,
                    "p99": 4,
                    "max": 5,
                    "mean": 6,
                },
                "renameByName": {"series\\stat": "protocol mode", "p50": "p50 (median)"},
            },
        ),
    ]
    mappings: list[dm.ValueMapping] = [
        dm.RegexMap(
            options=dm.DashboardRegexMapOptions(
                pattern=f"^{protocol}.*",
                result=dm.ValueMappingResult(color=colour, index=index),
            )
        )
        for index, (protocol, colour) in enumerate(COLOURS.items())
    ]
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .height(6)
        .span(12)
        .with_target(
            query(
                f"label_join({metric}{{{job}}}, " + '"series", " ", "protocol", "mode")',
                legend="",
                instant=True,
                table_format=True,
            )
        )
        .transformations(transformations)
        .unit("s")
        .decimals(4)
        .align(common.FieldTextAlignment.AUTO)
        .cell_options(common.TableAutoCellOptions())
        .show_header(True)
        .cell_height(common.TableCellHeight.SM)
        .override_by_name(
            "protocol mode",
            [
                dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
                dm.DynamicConfigValue(id_val="mappings", value=mappings),
            ],
        )
    )
    return panel


def over_time(
    title: str, description: str, targets: Sequence[prom.Dataquery], unit: str
) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .height(9)
        .span(12)
        .targets(list(targets))
        .unit(unit)
        .draw_style(common.GraphDrawStyle.LINE)
        .line_width(2)
        .fill_opacity(0)
        .point_size(5)
        .show_points(common.VisibilityMode.AUTO)
        .span_nulls(False)
        .line_interpolation(common.LineInterpolation.LINEAR)
        .axis_placement(common.AxisPlacement.AUTO)
        .axis_soft_min(0)
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.PALETTE_CLASSIC))
        .legend(legend_bottom())
        .tooltip(tooltip_multi())
    )


def latency_over_time(title: str, description: str, histogram: str, job: str) -> timeseries.Panel:
    by = "sum by (protocol, mode)"
    mean = (
        f"{by} (rate({histogram}_sum{{{job}}}[$__rate_interval])) / "
        f"{by} (rate({histogram}_count{{{job}}}[$__rate_interval])) > 0"
    )
    p99 = (
        "histogram_quantile(0.99, sum by (le, protocol, mode) "
        f"(rate({histogram}_bucket{{{job}}}[$__rate_interval]))) > 0"
    )
    panel = over_time(
        title,
        description,
        [
            query(mean, legend="{{protocol}} {{mode}} mean"),
            query(p99, ref="B", legend="{{protocol}} {{mode}} p99 (buckets)", exemplar=True),
        ],
        "s",
    )
    return dashed(protocol_colours(panel), ".* p99 .*")


def histogram_heatmap(protocol: str) -> heatmap.Panel:
    series = f'imgbench_transmission_seconds_bucket{{{RECEIVER_RUNS},protocol="{protocol}"}}'
    # Exact per-step differences of the raw counters (no rate() extrapolation), so a
    # 10-image run adds up to 10 over its steps.
    expr = f"sum by (le) (clamp_min({series} - {series} offset $__interval, 0))"
    return (
        heatmap.Panel()
        .title(f"Transmission-time histogram: {protocol}")
        .description(
            f"Receiver histogram imgbench_transmission_seconds for {protocol}: each cell is"
            " the number of images received during one time step whose transmission time"
            " fell in that bucket (bucket bounds 1-2-5 from 50 µs to 30 s). Counts are exact"
            " differences of the raw counters between steps (no rate() extrapolation), so a"
            " 10-image run adds up to 10. Darker = more images; empty between runs. Same axis"
            " as the other protocol's heatmap; the exact per-image times are in the bar chart"
            " above."
        )
        .datasource(PROMETHEUS)
        .height(8)
        .span(12)
        .with_target(query(expr, legend="{{le}}", heatmap_format=True))
        .scale_distribution(cb.ScaleDistributionConfig().type(common.ScaleDistribution.LINEAR))
        .hide_from(cb.HideSeriesConfig().legend(False).tooltip(False).viz(False))
        .calculate(False)
        .cell_gap(1)
        .color(
            heatmap.HeatmapColorOptions()
            .mode(hm.HeatmapColorMode.OPACITY)
            .fill(COLOURS[protocol])
            .scale(hm.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
            .reverse(False)
        )
        .filter_values(heatmap.FilterValueRange().le(1e-9))
        .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.AUTO))
        .y_axis(
            heatmap.YAxisConfig().unit("s").axis_placement(common.AxisPlacement.LEFT).reverse(False)
        )
        .show_legend()
        .show_value(common.VisibilityMode.NEVER)
        .mode(common.TooltipDisplayMode.SINGLE)
        .show_y_histogram()
        .show_color_scale(True)
        .exemplars_color("rgba(255,0,255,0.7)")
    )


def resource_panel(title: str, description: str, expr: str, unit: str) -> timeseries.Panel:
    """A per-service resource series with the run-in-progress band on a right axis."""
    band = [
        fixed(BAND_COLOUR),
        dm.DynamicConfigValue(id_val="unit", value="none"),
        dm.DynamicConfigValue(id_val="decimals", value=0),
        dm.DynamicConfigValue(id_val="min", value=0),
        dm.DynamicConfigValue(id_val="max", value=1),
        dm.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
        dm.DynamicConfigValue(id_val="custom.axisLabel", value="run in progress"),
        dm.DynamicConfigValue(id_val="custom.lineInterpolation", value="stepAfter"),
        dm.DynamicConfigValue(id_val="custom.fillOpacity", value=15),
        dm.DynamicConfigValue(id_val="custom.lineWidth", value=0),
    ]
    panel = over_time(
        title,
        description,
        [
            query(expr, legend="{{job}}"),
            query(RUN_IN_PROGRESS, ref="B", legend="run in progress"),
        ],
        unit,
    ).height(8)
    for job, colour in JOB_COLOURS.items():
        panel = panel.override_by_name(job, [fixed(colour)])
    return panel.override_by_name("run in progress", band)


# ---- the dashboard -------------------------------------------------------------------------


def run_annotations() -> list[cog.Builder[dm.AnnotationQuery]]:
    builtin = (
        db.AnnotationQuery()
        .built_in(1)
        .datasource(common.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .name("Annotations & Alerts")
        .type("dashboard")
    )
    # A region over each comparison, on every time panel (toggle "Runs" at the top).
    # Grafana evaluates Prometheus annotations at a 60 s step unless the annotation
    # sets one (the SDK's annotation type has no step field), so the window is that
    # step: every run shows, as the minute(s) it touched. The band of the Resources
    # panels follows the panel's own step.
    runs = (
        db.AnnotationQuery()
        .name("Runs")
        .datasource(PROMETHEUS)
        .enable(True)
        .hide(False)
        .icon_color(BAND_COLOUR)
        .expr(f"max_over_time(imgbench_runs_in_progress{{{TRANSMITTER}}}[1m]) > 0")
    )
    return [builtin, runs]


def build() -> dict[str, Any]:
    """The dashboard as the JSON object Grafana provisions."""
    stats = [
        last_run_stat(
            "Total transfer time",
            "Receiver, last run: first scheduled send to last image fully received, delays"
            " between sends included. With the default 10 images and 1 s delay this is about"
            " 9 s plus the transfer itself.",
            f"imgbench_run_total_transfer_seconds{{{RECEIVER_RUNS}}}",
            "s",
        ),
        last_run_stat(
            "Cumulative transmission time",
            "Receiver, last run: sum of the per-image transmission times (delays excluded)."
            " Lower is better; this is the protocol's total cost for the same images.",
            f"imgbench_run_cumulative_transmission_seconds{{{RECEIVER_RUNS}}}",
            "s",
        ),
        last_run_stat(
            "Median per-image time",
            "Receiver, last run: exact median (p50) of the per-image transmission time:"
            " receive-complete minus scheduled send start, measured images only (warm-up"
            " excluded).",
            f'imgbench_run_transmission_seconds{{{RECEIVER_RUNS},stat="p50"}}',
            "s",
        ),
        last_run_stat(
            "Max per-image time",
            "Receiver, last run: the slowest image's transmission time (exact maximum).",
            f'imgbench_run_transmission_seconds{{{RECEIVER_RUNS},stat="max"}}',
            "s",
        ),
        last_run_stat(
            "Throughput",
            "Receiver, last run: image bytes of the measured images divided by the cumulative"
            " transmission time, in bytes per second (SI: 1 MB/s = 10^6 B/s).",
            f"imgbench_run_throughput_bytes_per_second{{{RECEIVER_RUNS}}}",
            "Bps",
        ),
        last_run_stat(
            "Images received",
            "Receiver, last run: number of measured images accepted (warm-up images"
            " excluded). Should equal IMGBENCH_IMAGES for both protocols; a lower number"
            " means images were lost.",
            f"imgbench_run_images{{{RECEIVER_RUNS}}}",
            "none",
        ),
        last_run_stat(
            "Integrity failures",
            "Receiver, since it started: images whose length or SHA-256 did not match what"
            " the message declared (raw counter, all runs). Anything other than 0 is a bug.",
            f"sum by (protocol) (imgbench_integrity_failures_total{{{RECEIVER_RUNS}}})",
            "none",
            legend="{{protocol}}",
        ),
        last_run_stat(
            "Send errors",
            "Transmitter, since it started: images not delivered (could not connect,"
            " timeout, disconnect, rejected, integrity), all reasons summed (raw counter,"
            " all runs). Should be 0.",
            f"sum by (protocol) (imgbench_send_errors_total{{{TRANSMITTER}}})",
            "none",
            legend="{{protocol}}",
        ),
    ]

    # Rows carry no description in Grafana's schema (it was never shown): what each
    # row holds is said by its title and its panels' descriptions.
    last_run: list[Any] = [verdict(), *stats, per_image_bars()]
    statistics: list[Any] = [
        stats_table(
            "Transmission time statistics (receiver)",
            "Receiver, last run: exact min / p50 / p90 / p99 / max / mean of the"
            " per-image transmission time (receive-complete minus scheduled send start),"
            " one row per protocol and mode. With 10 images p90 and p99 interpolate"
            " between the slowest images.",
            "imgbench_run_transmission_seconds",
            RECEIVER_RUNS,
        ),
        stats_table(
            "Round-trip time statistics (transmitter)",
            "Transmitter, last run: exact min / p50 / p90 / p99 / max / mean of the"
            " round-trip time (acknowledgement received minus send start), which adds the"
            " receiver's checksum and the acknowledgement's way back to the transmission"
            " time.",
            "imgbench_run_round_trip_seconds",
            TRANSMITTER_RUNS,
        ),
    ]

    history = (
        over_time(
            "Median and max per run (history)",
            "Receiver: the exact median (solid) and maximum (dashed) per-image transmission"
            " time of each completed run. The value steps when a run completes and holds"
            " until the next one, so runs can be compared over the time range.",
            [
                query(
                    f'imgbench_run_transmission_seconds{{{RECEIVER_RUNS},stat=~"p50|max"}}',
                    legend="{{protocol}} {{mode}} {{stat}}",
                )
            ],
            "s",
        )
        .height(8)
        .line_interpolation(common.LineInterpolation.STEP_AFTER)
    )
    received = (
        over_time(
            "Images received (cumulative)",
            "Receiver, since it started: measured images accepted (raw counter, warm-up"
            " excluded). Each run adds IMGBENCH_IMAGES per protocol; a step smaller than"
            " that means lost images.",
            [
                query(
                    "sum by (protocol, mode)"
                    f" (imgbench_images_received_total{{{RECEIVER_RUNS}}}) > 0"
                )
            ],
            "none",
        )
        .height(8)
        .line_interpolation(common.LineInterpolation.STEP_AFTER)
        .decimals(0)
    )
    over: list[Any] = [
        latency_over_time(
            "Transmission time over time (receiver), with exemplars",
            "Receiver. Solid: mean transmission time of the images received in each"
            " window (histogram sum / count over $__rate_interval). Dashed: p99"
            " estimated from the histogram buckets (coarse: 1-2-5 bounds). Diamonds are"
            " exemplars: single images with the id of the trace that carried them; click"
            " one to open the trace in Jaeger. Empty between runs.",
            "imgbench_transmission_seconds",
            RECEIVER_RUNS,
        ),
        latency_over_time(
            "Round-trip time over time (transmitter)",
            "Transmitter. Solid: mean round-trip time (send start to acknowledgement) of"
            " the images acknowledged in each window (histogram sum / count over"
            " $__rate_interval). Dashed: p99 estimated from the histogram buckets, with"
            " exemplars where the transmitter recorded them. Empty between runs.",
            "imgbench_round_trip_seconds",
            TRANSMITTER_RUNS,
        ),
        histogram_heatmap("websocket"),
        histogram_heatmap("grpc"),
        dashed(protocol_colours(history), ".* max$"),
        protocol_colours(received),
    ]

    resources: list[Any] = [
        resource_panel(
            "CPU usage of the services",
            "CPU time used per second by each service process (rate of"
            " process_cpu_seconds_total): 100% = one core fully busy. Both protocols are"
            " served by the same processes, so compare the CPU during the websocket part"
            " of a run with the grpc part. Grey band: a comparison is running (at least"
            " one scrape of the step saw it).",
            f"rate(process_cpu_seconds_total{{{BOTH_JOBS}}}[$__rate_interval])",
            "percentunit",
        ),
        resource_panel(
            "Resident memory of the services",
            "Resident set size (RAM actually held) of each service process"
            " (process_resident_memory_bytes). Each image is held in memory while it is"
            " sent or checked, so larger images raise the peaks. Grey band: a comparison"
            " is running (at least one scrape of the step saw it).",
            f"process_resident_memory_bytes{{{BOTH_JOBS}}}",
            "bytes",
        ),
    ]

    builder = (
        db.Dashboard("imgbench: WebSocket vs gRPC")
        .uid(UID)
        .description(
            "WebSocket and gRPC sending the same images, side by side: websocket is always"
            " blue, grpc always orange."
        )
        .tags(["imgbench", "websocket", "grpc"])
        .timezone("browser")
        .readonly()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .refresh("5s")
        .time("now-15m", "now")
        .timepicker(db.TimePicker().refresh_intervals(["1s", "5s", "10s", "30s", "1m", "5m"]))
        .version(1)
        .annotations(run_annotations())
        .with_variable(direction_variable())
    )
    # Expanded rows: a row is followed by its panels at the top level (panels put
    # inside a row are only kept by Grafana when the row is collapsed).
    for title, panels in (
        ("Last run: exact figures", last_run),
        ("Last run: exact statistics", statistics),
        ("Over time", over),
        ("Resources", resources),
    ):
        builder = builder.with_row(db.Row(title).collapsed(False))
        for panel in panels:
            builder = builder.with_panel(panel)
    model = builder.build()
    # Panel ids in reading order (the SDK leaves them unset; Grafana needs them unique).
    for number, panel in enumerate(model.panels or [], start=1):
        panel.id_val = number
    data: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    drop_fields_grafana_12_4_lacks(data)
    return data


def drop_fields_grafana_12_4_lacks(data: dict[str, Any]) -> None:
    """Remove what the SDK's ``next`` types still emit but Grafana 12.4's schema lacks.

    Grafana 12.4's ``TableOptions`` (@grafana/schema 12.4.0, common.gen.d.ts) has no
    ``footer``: the footer moved to per-field options. The SDK defaults it, so it is
    removed here rather than shipped as a dead field.
    """
    for panel in iter_panels(data):
        if panel.get("type") == "table":
            panel.get("options", {}).pop("footer", None)


def iter_panels(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel of ``data``, rows and panels inside rows included."""
    out: list[dict[str, Any]] = []
    for panel in data.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def render() -> str:
    """The dashboard file's exact text (2-space indent, trailing newline)."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python grafana/dashboard.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
