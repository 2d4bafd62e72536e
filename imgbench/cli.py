"""The ``imgbench`` command: the composition root.

This is the one module of the shared package that imports the services
(``receiver``, ``transmitter``); every other ``imgbench`` module stays
independent of them (a test checks). Each subcommand builds its typed
settings once (flags over environment variables over defaults), configures
logging, runs, and maps errors to exit codes: 0 success, 1 a run failed
(image lost or corrupted, receiver unreachable), 2 bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from imgbench import __version__, settings
from imgbench.errors import ConfigError, RunError
from imgbench.telemetry import configure_logging, get_logger

log = get_logger("imgbench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgbench",
        description="Compare WebSocket and gRPC for sending images, with evidence.",
    )
    parser.add_argument("--version", action="version", version=f"imgbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    compare = sub.add_parser(
        "compare",
        help="start a local receiver, send the image over each protocol, print the table",
        description="The main job: a side-by-side comparison on this machine (no Docker).",
    )
    settings.add_arguments(compare, settings.COMPARE_OPTIONS)

    receiver = sub.add_parser("receiver", help="run the receiver service")
    settings.add_arguments(receiver, settings.RECEIVER_OPTIONS)

    transmitter = sub.add_parser(
        "transmitter", help="run the transmitter against a running receiver (once, or --serve)"
    )
    settings.add_arguments(transmitter, settings.TRANSMITTER_OPTIONS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "receiver":
            return _receiver(args)
        if args.command == "transmitter":
            return _transmitter(args)
        return _compare(args)
    except ConfigError as exc:
        sys.stderr.write(f"imgbench: {exc}\n")
        return 2
    except RunError as exc:
        sys.stderr.write(f"imgbench: run failed: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("imgbench: interrupted\n")
        return 130


def _receiver(args: argparse.Namespace) -> int:
    from receiver.server import serve

    cfg = settings.receiver_settings(args)
    configure_logging(cfg.log_format, cfg.log_level)
    ready = os.environ.get("IMGBENCH_READY_FILE")
    asyncio.run(serve(cfg, Path(ready) if ready else None))
    return 0


def _transmitter(args: argparse.Namespace) -> int:
    cfg = settings.transmitter_settings(args)
    configure_logging(cfg.log_format, cfg.log_level)
    from transmitter.service import run_once, serve

    if cfg.serve:
        asyncio.run(serve(cfg))
        return 0
    return asyncio.run(run_once(cfg))


def _compare(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from imgbench.metrics import TransmitterMetrics
    from imgbench.table import comparison_table, settings_line
    from imgbench.telemetry import tracer_provider
    from transmitter.compare import compare_locally
    from transmitter.runner import new_run_id

    cfg = settings.transmitter_settings(args, options=settings.COMPARE_OPTIONS)
    console = Console(stderr=False)
    # Logs go to stderr at warning level by default so the table stays readable.
    level = cfg.log_level if args.log_level or os.environ.get("IMGBENCH_LOG_LEVEL") else "warning"
    configure_logging(cfg.log_format, level)
    out_dir = cfg.output / new_run_id()
    tracing = tracer_provider("imgbench-transmitter")
    total = cfg.images * len(cfg.protocols) * cfg.repeat
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("sending", total=total)

        def progress(protocol: str, n: int) -> None:
            bar.update(task, advance=n, description=f"sending over {protocol}")

        try:
            comparison = asyncio.run(
                compare_locally(
                    cfg,
                    tracing=tracing,
                    metrics=TransmitterMetrics(),
                    out_dir=out_dir,
                    progress=progress,
                )
            )
        finally:
            tracing.shutdown()
    console.print(comparison_table(comparison))
    console.print(settings_line(comparison), highlight=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    comparison.save(out_dir / "results.json")
    console.print(f"wrote {out_dir / 'results.json'}", highlight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
