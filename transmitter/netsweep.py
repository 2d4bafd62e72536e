"""``imgbench netsweep``: both protocols across a grid of emulated links.

Why a subcommand of its own rather than ``sweep --links``: ``sweep`` varies the
image over one receiver; this varies the *link* (a lab per RTT and rate), and
within each link the pause between images and the size, then plots time
against RTT. Its grid, its clamp to the forwarder's ceiling and its outputs
(``netsweep.json``/``.md``/``.png``) have nothing to share with the size
sweep's, and each cell is still an ordinary ``imgbench sweep --link`` result
(``runs/<cell>/size-*/results.json``) that ``imgbench report`` can open.

Grid: every RTT x rate is one lab (one ceiling measurement for the whole sweep,
then per lab: TCP settings, RTT probe, receiver on host b); in it, one
``imgbench sweep --sizes ...`` child on host a per delay. A rate above the
ceiling measured at the start is clamped to :data:`CEILING_SHARE` of it,
rounded down to 10 Mbit/s, with a warning naming the ceiling; the cell
records the rate requested and the rate used.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgbench.config.settings import TransmitterSettings
from imgbench.lab import Lab, LinkSpec
from imgbench.lab.spec import parse_duration, parse_rate
from imgbench.measure.results import Comparison
from imgbench.report.netsweep import Cell, cells_of, write_netsweep
from transmitter.linked import (
    add_forwarder_stats,
    child_flags,
    lab_receiver,
    link_line,
    mbit,
    measure_ceiling,
    probe_link,
    transmit,
)

#: A clamped rate is at most this share of the measured ceiling: below it the
#: forwarder paces accurately (the lab's README: accurate to ~300 Mbit/s, 90 %
#: at 400, with a ceiling of 410-560).
CEILING_SHARE = 0.8

FULL = {"rtts": "0,10ms,50ms,100ms", "rates": "100mbit,1gbit", "sizes": "256KiB,4MiB",
        "delays": "0,1"}  # fmt: skip
QUICK = {"rtts": "0,10ms", "rates": "100mbit", "sizes": "256KiB", "delays": "0"}
QUICK_IMAGES = 3


@dataclass(frozen=True)
class Grid:
    """The sweep's axes: seconds, bit/s, bytes, seconds."""

    rtts: tuple[float, ...]
    rates: tuple[float, ...]
    sizes: tuple[int, ...]
    delays: tuple[float, ...]


def parse_grid(rtts: str, rates: str, sizes: list[int], delays: str) -> Grid:
    """Axes from their comma-separated texts (ConfigError names ``link.<key>`` or the flag)."""
    from imgbench.errors import ConfigError

    def split(text: str) -> list[str]:
        return [p.strip() for p in text.split(",") if p.strip()]

    rtt_values = tuple(parse_duration("rtt", t) for t in split(rtts))
    rate_values = tuple(parse_rate(t) for t in split(rates))
    try:
        delay_values = tuple(float(t) for t in split(delays))
    except ValueError as exc:
        raise ConfigError("--delays", f"{delays!r}: {exc}") from exc
    for name, values in (("--rtts", rtt_values), ("--rates", rate_values),
                         ("--delays", delay_values)):  # fmt: skip
        if not values:
            raise ConfigError(name, "needs at least one value")
        if len(set(values)) != len(values):
            raise ConfigError(name, "a value is listed twice")
    if any(d < 0 or not math.isfinite(d) for d in delay_values):
        raise ConfigError("--delays", "delays are seconds >= 0")
    for rtt in rtt_values:
        LinkSpec(rtt=rtt)  # the SPEC's own bounds
    return Grid(rtt_values, rate_values, tuple(sizes), delay_values)


def clamp_rate(rate: float, ceiling: float) -> float:
    """``rate``, or :data:`CEILING_SHARE` of ``ceiling`` rounded down to 10 Mbit/s."""
    if rate <= CEILING_SHARE * ceiling:
        return rate
    return max(10e6, math.floor(CEILING_SHARE * ceiling / 10e6) * 10e6)


def _cell_id(run_id: str, rtt: float, rate: float, delay: float) -> str:
    return f"{run_id}-rtt{rtt * 1e3:g}ms-rate{rate / 1e6:g}mbit-delay{delay:g}s"


async def run_netsweep(
    settings: TransmitterSettings,
    grid: Grid,
    *,
    run_id: str,
    log_level_given: bool,
) -> tuple[list[Cell], Path, int]:
    """Run the grid; (cells, output directory, exit code: 0, or the first child's failure)."""
    out_dir = settings.output / run_id
    runs_dir = out_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    ceiling = await measure_ceiling(1500)
    print(f"forwarder ceiling: {mbit(ceiling.ip_rate)} at MTU 1500 (unshaped bulk TCP)",
          flush=True)  # fmt: skip
    cells: list[Cell] = []
    links: list[dict[str, Any]] = []
    code = 0
    log_path = out_dir / "transmitter.log"
    sizes = ",".join(str(s) for s in grid.sizes)
    for rate_requested in grid.rates:
        rate = clamp_rate(rate_requested, ceiling.ip_rate)
        if rate != rate_requested:
            sys.stderr.write(
                f"imgbench: warning: rate {mbit(rate_requested)} is above what the emulated"
                f" link sustains here (ceiling {mbit(ceiling.ip_rate)} measured at the start);"
                f" the sweep runs it at {mbit(rate)} and records both\n"
            )
        for rtt in grid.rtts:
            spec = LinkSpec(rtt=rtt, rate=rate)
            text = f"rtt={rtt * 1e3:g}ms,rate={rate / 1e6:g}mbit"
            done: list[tuple[str, float]] = []
            async with Lab(spec) as lab:
                rtt_probe, record = await probe_link(
                    lab, text, ceiling, settings.compare.tcp_slow_start_after_idle
                )
                cell_log = runs_dir / f"receiver-{_cell_id(run_id, rtt, rate, 0)}.log"
                async with lab_receiver(lab, settings, cell_log) as ports:
                    for delay in grid.delays:
                        cell_id = _cell_id(run_id, rtt, rate, delay)
                        cfg = settings.updated(delay=delay, output=runs_dir)
                        args = [*child_flags(cfg, log_level_given=log_level_given),
                                f"--sizes={sizes}"]  # fmt: skip
                        with log_path.open("ab") as log:
                            result = await transmit(
                                lab, ports, "sweep", args, run_id=cell_id, record=record,
                                output=log,
                            )  # fmt: skip
                        if result != 0:
                            code = code or result
                            sys.stderr.write(f"imgbench: cell {cell_id} failed (see {log_path})\n")
                        done.append((cell_id, delay))
            for cell_id, delay in done:
                add_forwarder_stats(runs_dir / cell_id, lab.link_stats)
                for path in sorted((runs_dir / cell_id).glob("size-*/results.json")):
                    comparison = Comparison.load(path)
                    cells.extend(
                        cells_of(comparison, delay_s=delay, rate_requested_bit_s=rate_requested)
                    )
            links.append({"spec": text, "record": record, "forwarder": lab.link_stats})
            print(
                f"[{time.monotonic() - started:5.0f} s] "
                + link_line(text, rtt_probe, ceiling, lab.link_stats, spec.mtu),
                flush=True,
            )
    meta = {
        "run_id": run_id,
        "grid": {
            "rtts_s": grid.rtts,
            "rates_bit_s": grid.rates,
            "sizes_bytes": grid.sizes,
            "delays_s": grid.delays,
        },
        "ceiling": {
            "ip_rate_bit_s": ceiling.ip_rate,
            "goodput_bit_s": ceiling.goodput,
            "mtu_bytes": 1500,
            "clamp_share": CEILING_SHARE,
        },
        "settings": settings.public(),
        "links": links,
        "duration_s": time.monotonic() - started,
    }
    write_netsweep(cells, json.loads(json.dumps(meta, default=str)), out_dir)
    return cells, out_dir, code
