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

The panels live in ``grafana/panels/`` (one module per row, plus the queries and
the style they share); this script assembles the rows, the ``$direction``
variable and the run annotations, and writes or checks the file. Run it as a
script: its directory is then on ``sys.path``, which is how it finds ``panels``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog import builder as cog
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from panels import last_run, over_time, resources, statistics
from panels.queries import PROMETHEUS, TRANSMITTER
from panels.style import BAND_COLOUR

OUTPUT = Path(__file__).resolve().parent / "dashboards" / "imgbench.json"

UID = "imgbench"
#: The rows, top to bottom.
ROWS = (last_run, statistics, over_time, resources)


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
    # inside a row are only kept by Grafana when the row is collapsed). Rows carry no
    # description in Grafana's schema (it was never shown): what each row holds is
    # said by its title and its panels' descriptions.
    for row in ROWS:
        builder = builder.with_row(db.Row(row.TITLE).collapsed(False))
        for panel in row.panels():
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
