"""Row 2, "Last run: exact statistics": order statistics tables, receiver and transmitter."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from panels.queries import PROMETHEUS, RECEIVER_RUNS, TRANSMITTER_RUNS, query
from panels.style import COLOURS

TITLE = "Last run: exact statistics"


def panels() -> list[Any]:
    """Exact min / p50 / p90 / p99 / max / mean: transmission time, then round trip."""
    return [
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
