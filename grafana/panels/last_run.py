"""Row 1, "Last run: exact figures": the verdict, one stat per figure, per-image bars."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import barchart, stat
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from panels.queries import DIRECTION, PROMETHEUS, RECEIVER_RUNS, TRANSMITTER, VERDICT_RULE, query
from panels.style import COLOURS, legend_bottom, protocol_colours, text_thresholds, tooltip_multi

TITLE = "Last run: exact figures"


def panels() -> list[Any]:
    """The verdict, the last run's figures (one stat each), then every image's time."""
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

    return [verdict(), *stats, per_image_bars()]


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
