"""``imgbench compare --link SPEC`` and ``imgbench sweep --link SPEC``: two emulated hosts.

The comparison is the same as on loopback, but the receiver runs on lab host
``b`` (in its time namespace when the SPEC has a ``clock-offset``) and the
transmitter on host ``a``, and every byte crosses the emulated link
(:mod:`imgbench.lab`). Both are separate processes: this one only builds the
lab, measures it and waits.

Order of a run
  1. the forwarder's ceiling: an unshaped lab at this SPEC's MTU, one bulk TCP
     transfer (:func:`imgbench.lab.baseline.probe_bulk`), so a result says what
     the link could carry on this machine at that moment;
  2. the lab for SPEC; per host, TCP settings that live per network namespace
     (``tcp_slow_start_after_idle``) are applied and read back;
  3. the link's RTT as configured, measured with the ping-style probe;
  4. the receiver on ``b`` (explicit environment, free ports on ``198.18.0.2``),
     then ``imgbench compare|sweep --external-receiver`` on ``a`` with every
     resolved setting passed as a flag, printing to this terminal;
  5. cleanup (also on Ctrl-C and SIGTERM: :class:`~imgbench.lab.Lab`), after
     which the forwarder's packet counters are added to each results.json.

The child learns the run id and the link record (steps 1-3) from a JSON file
named by :data:`LINK_RECORD_ENV`, an internal variable of this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Any, Final

from imgbench.config.option import Option
from imgbench.config.report_options import REPORT_OPTIONS
from imgbench.config.settings import ReportSettings, TransmitterSettings
from imgbench.config.thresholds import Threshold
from imgbench.config.transmitter_options import COMPARE_OPTIONS, TARGET_OPTIONS
from imgbench.errors import ConfigError
from imgbench.lab import Lab, LabError, LinkSpec
from imgbench.lab.baseline import BulkProbe, RttProbe, probe_bulk, probe_rtt
from imgbench.lab.hosts import HOSTS
from imgbench.runtime.lifecycle import READY_FILE_ENV
from transmitter.compare import child_env, receiver_argv, receiver_env, wait_ready

#: Internal: the parent's JSON file (``run_id``, ``link``) for the child on host a.
LINK_RECORD_ENV = "IMGBENCH_LAB_RECORD"
#: What the transmitter child also inherits: it draws the table and progress bar here.
TERMINAL_ENV = ("TERM", "COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")
#: Every option of ``compare``/``sweep``: the child gets each resolved value as a flag,
#: except :data:`NOT_PASSED` (a test checks each parser argument is one or the other).
LAB_OPTIONS: Final = (*COMPARE_OPTIONS, *REPORT_OPTIONS)
#: Settings the parent does not hand down: the child is the transmitter of this lab
#: (the lab picks the receiver's address and ports; :func:`refuse_unusable` refuses
#: them when given). The token goes through the environment (argv shows in ps).
NOT_PASSED: Final = frozenset({"link", "external", "receiver_host", "ws_port", "grpc_port",
                               "http_port", "token", "token_file"})  # fmt: skip
SLOW_START_SYSCTL = "/proc/sys/net/ipv4/tcp_slow_start_after_idle"


def mbit(bit_s: float) -> str:
    return f"{bit_s / 1e6:.0f} Mbit/s"


async def measure_ceiling(mtu: int, seconds: float = 2.0) -> BulkProbe:
    """The unshaped forwarder's rate at ``mtu``: one bulk TCP transfer a -> b."""
    async with Lab(LinkSpec(mtu=mtu)) as lab:
        return await probe_bulk(lab, seconds=seconds, warmup=0.5)


def spec_fields(spec: LinkSpec) -> dict[str, Any]:
    """The SPEC's settings in SI units (seconds, bit/s, bytes, packets)."""
    return {
        "rtt_s": spec.rtt,
        "rate_bit_s": spec.rate,
        "jitter_s": spec.jitter,
        "loss": spec.loss,
        "clock_offset_s": spec.clock_offset,
        "mtu_bytes": spec.mtu,
        "queue_packets": spec.queue,
        "seed": spec.seed,
    }


def link_record(
    text: str, spec: LinkSpec, rtt: RttProbe, ceiling: BulkProbe, tcp: dict[str, Any]
) -> dict[str, Any]:
    """What a result records about its link (README "Over a network" defines each field)."""
    return {
        "spec": text,
        "settings": spec_fields(spec),
        "measured": {
            "rtt_min_s": rtt.rtt_min,
            "rtt_median_s": rtt.rtt_median,
            "rtt_probes": len(rtt.rtts),
            "rtt_probes_lost": rtt.lost,
        },
        "ceiling": {
            "ip_rate_bit_s": ceiling.ip_rate,
            "goodput_bit_s": ceiling.goodput,
            "mtu_bytes": spec.mtu,
            "rate_above_ceiling": spec.rate is not None and spec.rate > ceiling.ip_rate,
        },
        "tcp": tcp,
    }


async def apply_tcp_settings(lab: Lab, slow_start_after_idle: str) -> dict[str, Any]:
    """Set ``net.ipv4.tcp_slow_start_after_idle`` (``on``/``off``) in both hosts' network
    namespaces and read it back: ``{"slow_start_after_idle": {"a": 0|1, "b": 0|1}}``."""
    values: dict[str, int] = {}
    bit = "1" if slow_start_after_idle == "on" else "0"
    for host in HOSTS:
        code, _, err = await lab.run(host, ["sh", "-c", f"echo {bit} > {SLOW_START_SYSCTL}"])
        if code != 0:
            raise LabError(f"cannot set tcp_slow_start_after_idle on host {host}: {err.strip()}")
        code, out, err = await lab.run(host, ["cat", SLOW_START_SYSCTL])
        values[host] = int(out.strip()) if code == 0 and out.strip().isdigit() else -1
    return {"slow_start_after_idle": values}


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Threshold):
        return value.expression
    if isinstance(value, tuple):
        return ",".join(map(_flag_value, value))
    if value is None:
        return ""
    return str(value)


def child_flags(
    settings: TransmitterSettings,
    report: ReportSettings | None = None,
    *,
    log_level_given: bool,
    options: Sequence[Option] = LAB_OPTIONS,
) -> list[str]:
    """Every resolved setting of ``options`` as ``--flag=value`` (a repeatable one once
    per value), so the child runs and reports exactly as asked here, whatever came
    from flags, environment or defaults; ``report`` defaults to the default report
    settings. Not :data:`NOT_PASSED`, nor the log level unless it was given."""
    values = {**settings.values(), **vars(report or ReportSettings())}
    flags: list[str] = []
    for opt in options:
        if opt.name in NOT_PASSED or (opt.name == "log_level" and not log_level_given):
            continue
        value = values[opt.name]
        if opt.multiple:
            flags.extend(f"{opt.flag}={_flag_value(v)}" for v in value)
        else:
            flags.append(f"{opt.flag}={_flag_value(value)}")
    return flags


def refuse_unusable(settings: TransmitterSettings, given: set[str]) -> None:
    """Refuse (:class:`ConfigError`, exit 2, naming the setting) what cannot apply in
    the lab: an external receiver, the receiver's address or ports given as flags
    (``given``: the option names given on the command line; the lab's receiver is
    on host b at free ports, and these variables are shared with the receiver's own
    settings, so the environment's are ignored as on loopback), and a push address
    (the push servers must bind to host a's lab address, which the child finds)."""
    if settings.compare.external:
        raise ConfigError("IMGBENCH_LINK (--link)", "cannot be combined with an external receiver")
    for opt in TARGET_OPTIONS:
        if opt.name in given:
            raise ConfigError(
                opt.label,
                "cannot apply with --link: the lab's receiver runs on host b"
                " (198.18.0.2) at free ports",
            )
    if settings.push.push_host:
        raise ConfigError(
            "IMGBENCH_PUSH_HOST (--push-host)",
            "cannot apply with --link: the push servers bind to host a's lab address",
        )


async def probe_link(
    lab: Lab, text: str, ceiling: BulkProbe, slow_start_after_idle: str
) -> tuple[RttProbe, dict[str, Any]]:
    """Apply the per-host TCP settings, probe the RTT: (probe, the link's record)."""
    tcp = await apply_tcp_settings(lab, slow_start_after_idle)
    rtt = await probe_rtt(lab, count=20, interval=0.02)
    return rtt, link_record(text, lab.spec, rtt, ceiling, tcp)


@contextlib.asynccontextmanager
async def lab_receiver(
    lab: Lab, settings: TransmitterSettings, log_path: Path
) -> AsyncIterator[dict[str, int]]:
    """The receiver on host b (explicit environment, free ports); yields its ports.
    The lab stops it at cleanup."""
    with tempfile.TemporaryDirectory(prefix="imgbench-lab-") as tmp:
        ready = Path(tmp) / "ready.json"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log_file:
            receiver = await lab.spawn(
                "b",
                receiver_argv(settings, lab.address("b")),
                env=receiver_env(
                    settings, {READY_FILE_ENV: str(ready), "IMGBENCH_LOG_FORMAT": "json"}
                ),
                stdout=log_file,
                stderr=log_file,
            )
            yield await wait_ready(receiver, ready, log_path, 30.0)


async def transmit(
    lab: Lab,
    ports: dict[str, int],
    command: str,
    args: Sequence[str],
    *,
    run_id: str,
    record: dict[str, Any],
    output: IO[Any] | None = None,
    token: str = "",
) -> int:
    """``imgbench COMMAND ARGS`` on host a against the lab's receiver; its exit code.

    ``output`` takes its stdout and stderr (default: this terminal).
    """
    with tempfile.TemporaryDirectory(prefix="imgbench-lab-") as tmp:
        record_path = Path(tmp) / "link.json"
        record_path.write_text(json.dumps({"run_id": run_id, "link": record}))
        terminal = {k: os.environ[k] for k in TERMINAL_ENV if k in os.environ}
        transmitter = await lab.spawn(
            "a",
            [
                sys.executable, "-m", "imgbench.cli", command, *args,
                "--external-receiver=true", f"--receiver-host={lab.address('b')}",
                f"--port={ports['websocket']}", f"--grpc-port={ports['grpc']}",
                f"--http-port={ports['http']}",
            ],
            env=child_env({**terminal, LINK_RECORD_ENV: str(record_path),
                           **({"IMGBENCH_TOKEN": token} if token else {})}),
            stdin=None, stdout=output, stderr=output,
            # Ctrl-C stops this process, whose cleanup stops the child: an
            # interrupt cannot land in the child half-way through its imports.
            start_new_session=True,
        )  # fmt: skip
        return await transmitter.wait()


def warn_above_ceiling(spec: LinkSpec, ceiling: BulkProbe) -> None:
    if spec.rate is not None and spec.rate > ceiling.ip_rate:
        sys.stderr.write(
            f"imgbench: warning: link.rate {mbit(spec.rate)} is above the emulated link's"
            f" measured ceiling ({mbit(ceiling.ip_rate)} at MTU {spec.mtu} just now): the"
            " link delivers at most that; results record it (link.ceiling)\n"
        )


def link_line(text: str, rtt: RttProbe, ceiling: BulkProbe, stats: Any, mtu: int) -> str:
    """One line about the link after a run: RTT, ceiling, the forwarder's counters."""
    return (
        f"link {text}: RTT measured {rtt.rtt_median * 1e3:.2f} ms median"
        f" ({rtt.rtt_min * 1e3:.2f} min); ceiling {mbit(ceiling.ip_rate)} at MTU {mtu};"
        + "".join(
            f" {d}: {s.get('delivered', 0)} packets delivered, {s.get('lost', 0)} lost,"
            f" {s.get('dropped', 0)} dropped at the queue;"
            for d, s in (stats or {}).items()
        )
    )


async def run_linked(
    spec: LinkSpec,
    settings: TransmitterSettings,
    command: str,
    extra_args: Sequence[str],
    *,
    run_id: str,
    log_level_given: bool,
    report: ReportSettings | None = None,
) -> int:
    """Run ``imgbench COMMAND`` across a lab for ``spec``; its exit code.

    ``report`` (format, thresholds, details) goes to the child, which prints and
    checks; with ``--format json`` the link's line goes to stderr, so stdout stays
    the child's one JSON document.

    Raises :class:`~imgbench.lab.LabUnavailable` (before anything starts) when
    this machine cannot run the lab.
    """
    out_dir = settings.output / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    ceiling = await measure_ceiling(spec.mtu)
    warn_above_ceiling(spec, ceiling)
    async with Lab(spec) as lab, contextlib.AsyncExitStack() as stack:
        rtt, record = await probe_link(
            lab, settings.compare.link, ceiling, settings.compare.tcp_slow_start_after_idle
        )
        if settings.security.tls_on and settings.security.tls_cert is None:
            # A throw-away certificate for the lab's addresses (as compare --tls on loopback).
            from transmitter.compare import throwaway_tls

            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="imgbench-tls-"))
            settings = throwaway_tls(
                settings, Path(tmp), hosts=[lab.address("a"), lab.address("b")]
            )
        async with lab_receiver(lab, settings, out_dir / "receiver.log") as ports:
            args = [*child_flags(settings, report, log_level_given=log_level_given), *extra_args]
            code = await transmit(lab, ports, command, args, run_id=run_id, record=record,
                                  token=settings.security.token)  # fmt: skip
    add_forwarder_stats(out_dir, lab.link_stats)
    as_json = report is not None and report.format == "json"
    print(link_line(settings.compare.link, rtt, ceiling, lab.link_stats, spec.mtu), flush=True,
          file=sys.stderr if as_json else sys.stdout)  # fmt: skip
    return code


def add_forwarder_stats(out_dir: Path, stats: dict[str, dict[str, int]] | None) -> None:
    """Add the forwarder's counters (known only after the lab closed) to each results.json."""
    if stats is None:
        return
    for path in sorted(out_dir.rglob("results.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data.get("link"), dict):
            data["link"]["forwarder"] = stats
            path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_link_record(environ: dict[str, str] | None = None) -> tuple[str, dict[str, Any]] | None:
    """In the child on host a: ``(run_id, link record)`` from the parent, if any."""
    env = os.environ if environ is None else environ
    path = env.get(LINK_RECORD_ENV)
    if not path:
        return None
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return str(data["run_id"]), dict(data["link"])
