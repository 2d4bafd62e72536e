"""The ``imgbench`` command: the composition root.

This is the one module of the shared package that imports the services
(``receiver``, ``transmitter``); every other ``imgbench`` module stays
independent of them (a test checks). Each subcommand builds its typed
settings once (flags over environment variables over defaults), configures
logging, runs, and maps errors to exit codes: 0 success, 1 a run failed
(image lost or corrupted, receiver unreachable), 2 bad configuration, 99 a
threshold failed or ``report A B --fail-on-regression`` found a regression.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imgbench import __version__, config
from imgbench.errors import ConfigError, ResultsError, RunError
from imgbench.observe.logs import configure_logging, get_logger
from imgbench.runtime import alloc
from imgbench.security import certs_command

log = get_logger("imgbench")
#: Exit code when a --threshold fails or report --fail-on-regression finds a
#: regression: 99, like k6's ThresholdsHaveFailed, so CI can tell it from a
#: failed run (1) and bad configuration (2).
EXIT_THRESHOLD = 99
DEFAULT_SWEEP = "16KiB,256KiB,1MiB,4MiB,16MiB"


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
    config.add_arguments(compare, config.COMPARE_OPTIONS, only_with_external=config.EXTERNAL_ONLY)
    _output_flags(compare)

    sweep = sub.add_parser(
        "sweep",
        help="compare the protocols at several image sizes (generated noise PNGs)",
        description="One comparison per size; a table and a plot of median time and throughput.",
    )
    config.add_arguments(sweep, config.COMPARE_OPTIONS, only_with_external=config.EXTERNAL_ONLY)
    _output_flags(sweep)
    sweep.add_argument(
        "--sizes",
        dest="sizes",
        default=None,
        metavar="SIZES",
        help=f"Comma-separated image sizes (KiB, MiB, ...) [env IMGBENCH_SWEEP_SIZES, default"
        f" {DEFAULT_SWEEP}]",
    )

    netsweep = sub.add_parser(
        "netsweep",
        help="compare the protocols across a grid of emulated links (RTT x rate x size x delay)",
        description="One lab per RTT and rate (root needed), one size sweep per pause between"
        " images in it; a table and plots of median time against RTT (README 'Over a network').",
    )
    config.add_arguments(netsweep, config.COMPARE_OPTIONS)
    from transmitter.netsweep import FULL, QUICK, QUICK_IMAGES

    for axis, what in (("rtts", "link RTTs"), ("rates", "link rates"), ("sizes", "image sizes"),
                       ("delays", "pauses between images (s)")):  # fmt: skip
        netsweep.add_argument(
            f"--{axis}", dest=f"net_{axis}", default=None,
            help=f"Comma-separated {what} [default {FULL[axis]}; --quick: {QUICK[axis]}]",
        )  # fmt: skip
    netsweep.add_argument(
        "--quick", action="store_true",
        help=f"the CI-sized grid ({QUICK}) with {QUICK_IMAGES} images per protocol",
    )  # fmt: skip

    report = sub.add_parser(
        "report",
        help="regenerate the report of a saved result, or compare two saved results",
    )
    report.add_argument("result_dir", type=Path, help="a results directory (with results.json)")
    report.add_argument("other_dir", type=Path, nargs="?", help="a second one to compare with")
    report.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where a comparison of two results goes [default: compare-A-vs-B next to A]",
    )
    report.add_argument(
        "--force",
        action="store_true",
        help="replace an existing comparison in the output directory (refused otherwise)",
    )
    config.add_arguments(report, config.SAVED_REPORT_OPTIONS)
    report.add_argument(
        "--fail-on-regression",
        action="store_true",
        help=f"exit {EXIT_THRESHOLD} when B's median transmission time is significantly"
        " above A's for a label (the verdict's interval excludes 1)",
    )

    receiver = sub.add_parser("receiver", help="run the receiver service")
    config.add_arguments(receiver, config.RECEIVER_OPTIONS)

    transmitter = sub.add_parser(
        "transmitter", help="run the transmitter against a running receiver (once, or --serve)"
    )
    config.add_arguments(transmitter, config.TRANSMITTER_OPTIONS)
    certs_command.add_parser(sub)
    return parser


def _output_flags(parser: argparse.ArgumentParser) -> None:
    config.add_arguments(parser, config.REPORT_OPTIONS)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command not in {"report", "certs"}:
        # Process-wide malloc tuning, once, before any image buffer exists.
        alloc.keep_image_buffers()
    try:
        if args.command == "receiver":
            return _receiver(args)
        if args.command == "transmitter":
            return _transmitter(args)
        if args.command == "report":
            return _report(args)
        if args.command == "netsweep":
            return _netsweep(args)
        if args.command == "certs":
            return certs_command.run(args)
        return _compare(args)
    except (ConfigError, ResultsError) as exc:
        sys.stderr.write(f"imgbench: {exc}\n")
        return 2
    except RunError as exc:
        sys.stderr.write(f"imgbench: run failed: {exc}\n")
        return 1
    except OSError as exc:
        # A file that cannot be read or written (disk full, permissions): one line.
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"imgbench: {where}{exc.strerror or exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("imgbench: interrupted\n")
        return 130


def _receiver(args: argparse.Namespace) -> int:
    from imgbench.runtime.lifecycle import ready_file
    from receiver.server import serve

    cfg = config.receiver_settings(args)
    configure_logging(cfg.log_format, cfg.log_level)
    asyncio.run(serve(cfg, ready_file(os.environ)))
    return 0


def _transmitter(args: argparse.Namespace) -> int:
    cfg = config.transmitter_settings(args)
    configure_logging(cfg.observe.log_format, cfg.observe.log_level)
    from transmitter.service import run_once, serve

    if cfg.service.serve:
        asyncio.run(serve(cfg))
        return 0
    return asyncio.run(run_once(cfg))


def _sizes(args: argparse.Namespace) -> list[int]:
    raw = args.sizes or os.environ.get("IMGBENCH_SWEEP_SIZES") or DEFAULT_SWEEP
    label = "IMGBENCH_SWEEP_SIZES (--sizes)"
    try:
        sizes = [config.parse_size(part) for part in raw.split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(label, f"cannot parse {raw!r}: {exc}") from exc
    from imgbench.images import MIN_NOISE_PNG

    if not sizes or len(set(sizes)) != len(sizes) or min(sizes) < MIN_NOISE_PNG:
        raise ConfigError(label, f"need distinct sizes of at least {MIN_NOISE_PNG} bytes")
    return sizes


def _compare(args: argparse.Namespace) -> int:
    """``compare`` and ``sweep``: local receiver, progress bar, table, outputs."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from imgbench.observe.metrics import TransmitterMetrics
    from imgbench.observe.tracing import tracer_provider
    from transmitter.compare import ComparisonFailed, compare_with_receiver, sweep_with_receiver
    from transmitter.runner import new_run_id

    cfg = config.transmitter_settings(args, options=config.COMPARE_OPTIONS)
    report_cfg = config.report_settings(args)  # bad --format/--threshold: exit 2 before the run
    sizes = _sizes(args) if args.command == "sweep" else []
    limit = cfg.transport.max_message_bytes
    if sizes and max(sizes) + 1024 > limit:
        raise ConfigError(
            "IMGBENCH_SWEEP_SIZES (--sizes)",
            f"{max(sizes)} bytes does not fit IMGBENCH_MAX_MESSAGE_BYTES={limit}",
        )
    # Logs go to stderr at warning level unless asked, so the table stays readable.
    level_given = bool(args.log_level or os.environ.get("IMGBENCH_LOG_LEVEL"))
    level = cfg.observe.log_level if level_given else "warning"
    configure_logging(cfg.observe.log_format, level)
    from transmitter.linked import read_link_record, refuse_unusable

    lab_record = read_link_record()
    if cfg.compare.link and lab_record is None:
        given = {o.name for o in config.COMPARE_OPTIONS if getattr(args, o.name, None) is not None}
        refuse_unusable(cfg, given)
        return _over_link(cfg, report_cfg, args.command, sizes, level_given)
    link = lab_record[1] if lab_record else None
    out_dir = cfg.output / (lab_record[0] if lab_record else new_run_id())
    _make_output_dir(out_dir, "IMGBENCH_OUTPUT (--output)")
    tracing = tracer_provider("imgbench-transmitter")
    from imgbench.runtime import gcfreeze

    gcfreeze.freeze_after_startup()  # start-up is done: out of the GC's way
    work = cfg.workload
    total = work.images * len(work.protocols) * work.repeat * max(1, len(sizes))
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
        # No refresh thread: it would burn CPU in this process during the delays and
        # inflate the transmitter's CPU figures. The bar redraws after each ack.
        auto_refresh=False,
    ) as bar:
        task = bar.add_task("sending", total=total)

        def progress(protocol: str, n: int) -> None:
            bar.update(task, advance=n, description=f"sending over {protocol}")
            bar.refresh()

        common = {
            "tracing": tracing,
            "metrics": TransmitterMetrics(),
            "out_dir": out_dir,
            "progress": progress,
            "link": link,
        }
        try:
            if sizes:
                comparisons = asyncio.run(sweep_with_receiver(cfg, sizes, **common))  # type: ignore[arg-type]
            else:
                comparisons = [asyncio.run(compare_with_receiver(cfg, **common))]  # type: ignore[arg-type]
        except ComparisonFailed as exc:
            _write_partial(exc.comparisons, out_dir, sweep=bool(sizes))
            raise
        finally:
            tracing.shutdown()
    return _print_outcome(comparisons, out_dir, report_cfg, sweep=bool(sizes))


def _write_partial(comparisons: list[Any], out_dir: Path, *, sweep: bool) -> None:
    """Write what a failed comparison completed, marked incomplete (stderr says where).

    The failure still ends the command with exit 1; the finished protocol runs are
    measurements and are not thrown away.
    """
    from imgbench.report import write_outputs, write_sweep_outputs

    measured = [c for c in comparisons if c.runs]
    try:
        if not measured:
            for c in comparisons:
                c.save(out_dir / "results.json")
        elif sweep:
            write_sweep_outputs(measured, out_dir)
        else:
            write_outputs(measured[0], out_dir)
    except Exception as exc:  # never hide the run's own failure behind this one
        sys.stderr.write(f"imgbench: could not write the partial results: {exc}\n")
        return
    done = sum(len(c.runs) for c in comparisons)
    sys.stderr.write(
        f"imgbench: INCOMPLETE: {done} protocol run(s) completed; written to {out_dir}/"
        ' (results.json has "incomplete")\n'
    )


def _print_outcome(
    comparisons: list[Any],
    out_dir: Path,
    report_cfg: config.ReportSettings,
    *,
    sweep: bool,
) -> int:
    """Write the outputs, then print them (text or one JSON document) and the thresholds.

    Returns :data:`EXIT_THRESHOLD` when a threshold fails, else 0. In JSON mode
    stdout carries the document only; the threshold lines go to stderr.
    """
    from rich.console import Console

    from imgbench.report import clock_lines, write_outputs, write_sweep_outputs
    from imgbench.report.document import comparison_document, sweep_document
    from imgbench.report.sweep import sweep_summary_table
    from imgbench.report.terminal import _rich, comparison_view, settings_line
    from imgbench.report.thresholds import evaluate

    if sweep:
        written = write_sweep_outputs(comparisons, out_dir)
    else:
        written = write_outputs(comparisons[0], out_dir)
    checks = [evaluate(c, report_cfg.thresholds) for c in comparisons]
    failed = [r for per in checks for r in per if not r.ok]
    as_json = report_cfg.format == "json"
    if as_json:
        doc = (
            sweep_document(comparisons, thresholds=checks, files=written, notes=written.notes)
            if sweep
            else comparison_document(
                comparisons[0], thresholds=checks[0], files=written, notes=written.notes
            )
        )
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    console = Console(stderr=as_json)
    if not as_json:
        for comparison in comparisons:
            console.print(comparison_view(comparison, details=report_cfg.details), highlight=False)
            for line in clock_lines(comparison):
                console.print(line, highlight=False)
        if sweep:
            console.print(_rich(sweep_summary_table(comparisons), "sweep summary"))
        console.print(settings_line(comparisons[0]), highlight=False)
    if report_cfg.thresholds:
        console.print("THRESHOLDS", style="bold", highlight=False)
        for comparison, per in zip(comparisons, checks, strict=True):
            where = f" ({comparison.image.get('bytes')} B)" if sweep else ""
            for r in per:
                console.print(f"  {r.line()}{where}", highlight=False, markup=False)
    if not as_json:
        console.print(
            f"wrote {len(written)} files to {out_dir}/ (open report.html)", highlight=False
        )
    if failed:
        names = ", ".join(dict.fromkeys(r.threshold.expression for r in failed))
        sys.stderr.write(f"imgbench: threshold failed: {names}\n")
        return EXIT_THRESHOLD
    return 0


def _make_output_dir(path: Path, label: str) -> None:
    """Create the results directory before any run: an unusable path is a one-line
    configuration error (exit 2), not a traceback after the measurements."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(label, f"cannot create {path}: {why}") from exc


def _over_link(
    cfg: config.TransmitterSettings,
    report_cfg: config.ReportSettings,
    command: str,
    sizes: list[int],
    level_given: bool,
) -> int:
    """``--link``: the same command between two lab hosts (:mod:`transmitter.linked`)."""
    from imgbench.lab import LabUnavailable, parse_link, preflight
    from transmitter.linked import run_linked
    from transmitter.runner import new_run_id

    spec = parse_link(cfg.compare.link)
    try:
        preflight(spec)  # before anything is written: a refusal leaves no trace
    except LabUnavailable as exc:
        sys.stderr.write(f"imgbench: {exc}\n")
        return 2
    extra = [f"--sizes={','.join(str(s) for s in sizes)}"] if sizes else []
    try:
        return asyncio.run(
            run_linked(
                spec,
                cfg,
                command,
                extra,
                run_id=new_run_id(),
                log_level_given=level_given,
                report=report_cfg,
            )
        )
    except LabUnavailable as exc:
        sys.stderr.write(f"imgbench: {exc}\n")
        return 2


def _netsweep(args: argparse.Namespace) -> int:
    """``netsweep``: the link grid (:mod:`transmitter.netsweep`), then table and plots."""
    from rich.console import Console
    from rich.table import Table as RichTable

    from imgbench.lab import LabUnavailable, LinkSpec, preflight
    from imgbench.report.netsweep import summary
    from transmitter.netsweep import FULL, QUICK, QUICK_IMAGES, parse_grid, run_netsweep
    from transmitter.runner import new_run_id

    defaults = QUICK if args.quick else FULL
    if args.quick and args.images is None:
        args.images = str(QUICK_IMAGES)
    cfg = config.transmitter_settings(args, options=config.COMPARE_OPTIONS)
    cfg = cfg.updated(link="", external=False)  # the sweep makes its own links
    raw_sizes = args.net_sizes or defaults["sizes"]
    try:
        sizes = [config.parse_size(p) for p in raw_sizes.split(",") if p.strip()]
    except ValueError as exc:
        raise ConfigError("--sizes", f"cannot parse {raw_sizes!r}: {exc}") from exc
    grid = parse_grid(
        args.net_rtts or defaults["rtts"], args.net_rates or defaults["rates"], sizes,
        args.net_delays or defaults["delays"],
    )  # fmt: skip
    level_given = bool(args.log_level or os.environ.get("IMGBENCH_LOG_LEVEL"))
    configure_logging(cfg.observe.log_format, cfg.observe.log_level if level_given else "warning")
    try:
        preflight(LinkSpec())
    except LabUnavailable as exc:
        sys.stderr.write(f"imgbench: {exc}\n")
        return 2
    try:
        cells, out_dir, code = asyncio.run(
            run_netsweep(cfg, grid, run_id=new_run_id(), log_level_given=level_given)
        )
    except LabUnavailable as exc:
        sys.stderr.write(f"imgbench: {exc}\n")
        return 2
    table = summary(cells)
    rich_table = RichTable(title="median transmission ms [95% CI] and MB/s")
    for header in table.headers:
        rich_table.add_column(header)
    for row in table.rows:
        rich_table.add_row(*row)
    console = Console()
    console.print(rich_table)
    console.print(f"wrote netsweep.json, netsweep.md, netsweep.png to {out_dir}/", highlight=False)
    return code


def _report(args: argparse.Namespace) -> int:
    """``report A`` regenerates A's outputs; ``report A B`` compares B against A.

    With ``--format json`` stdout is one document (``schemas/compare.schema.json``):
    A's ``imgbench.compare/1`` (or ``imgbench.sweep/1``), or for A B ``imgbench.runs/1``.

    The comparison prints one verdict per label on the terminal (B against A:
    faster, slower, no significant difference, or why there is no verdict),
    refuses to replace an earlier comparison unless ``--force``, and with
    ``--fail-on-regression`` exits :data:`EXIT_THRESHOLD` when B is
    significantly slower than A for some label.
    """
    from imgbench.report import compare_results, regenerate
    from imgbench.report.runs import regressions

    as_json = config.report_settings(args, options=config.SAVED_REPORT_OPTIONS).format == "json"
    if args.other_dir is None:
        written = regenerate(args.result_dir)
        if as_json:
            sys.stdout.write(json.dumps(written.document, indent=2) + "\n")
        else:
            sys.stdout.write(f"wrote {len(written)} files to {args.result_dir}/\n")
        return 0
    a, b = args.result_dir, args.other_dir
    target = args.output or (a.parent / f"compare-{a.name}-vs-{b.name}")
    try:
        written = compare_results(a, b, target, overwrite=args.force)
    except FileExistsError as exc:
        raise ConfigError("--output", f"{exc}; choose another --output or pass --force") from exc
    out = sys.stdout
    if as_json:
        # stdout is the one document (imgbench.runs/1); the files are listed in it.
        out.write(json.dumps(written.document, indent=2) + "\n")
    else:
        out.write(f"B against A (A: {a}, B: {b}):\n")
        for v in written.verdicts:
            out.write(f"  {v.text}\n    method: {v.method}\n")
        if not written.verdicts:
            out.write("  no protocol/mode measured in both runs\n")
        out.write(f"wrote {len(written)} files to {target}/ (open compare.html)\n")
    worse = regressions(written.verdicts)
    if args.fail_on_regression and worse:
        labels = ", ".join(v.a.removeprefix("B ") for v in worse)
        sys.stderr.write(f"imgbench: regression: B is significantly slower for {labels}\n")
        return EXIT_THRESHOLD
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
