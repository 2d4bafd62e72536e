"""Row 3, "Over time": latency with exemplars, histograms, run history, images received."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap, timeseries
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm

from panels.queries import PROMETHEUS, RECEIVER_RUNS, TRANSMITTER_RUNS, query
from panels.style import COLOURS, dashed, legend_bottom, protocol_colours, tooltip_multi

TITLE = "Over time"


def panels() -> list[Any]:
    """Mean and p99 over time on both sides, a heatmap per protocol, run history."""
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
    return [
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
