"""Row 4, "Resources": CPU and memory of the two services, with the run-in-progress band."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import dashboard as dm

from panels.over_time import over_time
from panels.queries import BOTH_JOBS, RUN_IN_PROGRESS, query
from panels.style import BAND_COLOUR, JOB_COLOURS, fixed

TITLE = "Resources"


def panels() -> list[Any]:
    """CPU per second and resident memory per service process."""
    return [
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
