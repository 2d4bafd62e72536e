"""How the panels look: websocket always blue, grpc always orange; shared options.

Colours: websocket is always #1F77B4 (blue), grpc always #FF7F0E (orange), in
every panel (tests/stack/test_dashboard.py checks it).
"""

from __future__ import annotations

from typing import TypeVar

from grafana_foundation_sdk.builders import barchart, stat, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

COLOURS = {"websocket": "#1F77B4", "grpc": "#FF7F0E"}
JOB_COLOURS = {"imgbench-receiver": "#2CA02C", "imgbench-transmitter": "#9467BD"}
BAND_COLOUR = "#7F7F7F"
#: The panel builders that take colour overrides.
Coloured = TypeVar("Coloured", stat.Panel, barchart.Panel, timeseries.Panel)


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
