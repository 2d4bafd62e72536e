"""Clock probes, the transmitter's side (contract revision 2, ``proto/README.md``).

One :class:`ClockProber` per protocol run sends NTP-style probe exchanges over
the run's own connection (``Sender.send`` with a probe message: the WebSocket
socket, gRPC ``Send`` for unary and chunked runs, the run's ``SendStream``),
keeps them by group, echoes every finished exchange in the next probe so that
the receiver holds the same ones, and estimates the run's clock with
:func:`imgbench.measure.clock.estimate_run`.

Timing contract: the harness calls :meth:`ClockProber.group` only outside
timed windows (before the first image, in a pause after an Ack and before the
next scheduled send, after the last image) and passes the time it may use;
the prober sends as many probes as fit, never past that deadline.

A receiver that refuses a probe or answers without ``probe_reply`` (revision
1) ends probing for the run: its figures are reported as uncorrected.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from imgbench import wire
from imgbench.errors import ClockError, ImageLost, MalformedMessage, ReceiverRefused
from imgbench.measure.clock import PROBES_PER_GROUP, Probe, RunClock, estimate_run
from imgbench.observe.logs import get_logger
from imgbench.runtime.resources import boot_id
from imgbench.wire import Clock, ImageMeta, names
from transmitter.senders import Sender

log = get_logger("transmitter")


@dataclass
class ClockProber:
    """The probe exchanges of one protocol run (one connection)."""

    sender: Sender
    run_id: str
    repetition: int
    total: int
    timeout_s: float
    clock: int = Clock.CLOCK_MONOTONIC
    #: Set when probing stopped: why the figures stay uncorrected.
    unsupported: str = ""
    groups: dict[int, list[Probe]] = field(default_factory=dict)
    _pending: list[wire.Exchange] = field(default_factory=list)
    _next_id: int = 1
    _next_group: int = 0
    _receiver_boot_id: str = ""
    #: Round trips (ns) of the last group's probes, to tell how many fit in a pause.
    _recent: list[int] = field(default_factory=list)
    #: :meth:`estimate`'s result until a group or a stop changes it (it is asked twice
    #: per run, and estimating every group is ~0.5 ms at 20 images).
    _estimated: tuple[RunClock | None, str] | None = None

    @property
    def shared(self) -> bool:
        """Whether the groups so far show one clock (same boot id, every group's offset
        within its bound of zero: :func:`~imgbench.measure.clock.shared_clock`).

        The harness then sends no group in the pauses: on a shared clock the figures
        are not corrected, so those groups could not change them, and their work
        (about 0.4 ms of CPU per probe, both sides together, up to 8 per pause: README
        "Performance") ran between the
        timed windows on a machine the windows share. The group after the last image
        still checks the clock again.
        """
        run_clock, _ = self.estimate()
        return run_clock is not None and run_clock.shared

    @property
    def typical_ns(self) -> int:
        """Median round trip of the most recent group (0 before any): the expected cost
        of one more probe (the first exchange of a connection is often slower)."""
        if not self._recent:
            return 0
        return sorted(self._recent)[len(self._recent) // 2]

    async def group(self, budget_s: float | None = None) -> int:
        """Send one group (up to 8 probes, back to back); returns how many completed.

        ``budget_s``: time available (the rest of a pause); None = no limit
        (before the first image, after the last). Probes that would not finish
        within the budget (judged from the last group's median round trip,
        tripled, and the longest one of this group) are not sent; a group with
        no probe is skipped and numbers no group.
        """
        if self.unsupported:
            return 0
        deadline = None if budget_s is None else time.monotonic_ns() + int(budget_s * 1e9)
        group = self._next_group
        expected, done = 3 * self.typical_ns, 0
        rounds: list[int] = []
        for _ in range(PROBES_PER_GROUP):
            if deadline is not None and (
                expected == 0 or time.monotonic_ns() + max(expected, *rounds, 0) > deadline
            ):
                break
            before = time.monotonic_ns()
            probe = await self._exchange(group)
            if probe is None:
                break
            self.groups.setdefault(group, []).append(probe)
            self._estimated = None
            rounds.append(time.monotonic_ns() - before)
            done += 1
        if done:
            self._next_group += 1
            self._recent = rounds
        return done

    async def finish(self) -> None:
        """Report the exchanges not echoed yet in one last probe (its own reply is not used)."""
        if self.unsupported or not self._pending:
            return
        await self._exchange(self._next_group, record=False)

    def estimate(self) -> tuple[RunClock | None, str]:
        """The run's clock, or None and why not."""
        if self.unsupported:
            return None, self.unsupported
        if not self.groups:
            return None, "no clock probe completed"
        if self._estimated is None:
            try:
                self._estimated = (
                    estimate_run(
                        [self.groups[g] for g in sorted(self.groups)],
                        transmitter_boot_id=boot_id(),
                        receiver_boot_id=self._receiver_boot_id,
                    ),
                    "",
                )
            except ClockError as exc:
                self._estimated = None, f"clock estimate refused: {exc}"
        return self._estimated

    def as_dict(self) -> dict[str, Any]:
        """``ProtocolRun.clock``: status, why (uncorrected), and the estimate."""
        run_clock, why = self.estimate()
        if run_clock is None:
            return {"status": "uncorrected", "why": why}
        return {"status": "shared" if run_clock.shared else "corrected", **run_clock.as_dict()}

    async def _exchange(self, group: int, *, record: bool = True) -> Probe | None:
        protocol, mode = self.sender.protocol, self.sender.mode
        probe_id = self._next_id
        self._next_id += 1
        t1 = wire.read_clock(self.clock)
        info = wire.ProbeInfo(
            id=probe_id,
            revision=names.PROBE_REVISION,
            group=group,
            completed=tuple(self._pending),
            boot_id=boot_id(),
            realtime_ns=time.time_ns(),  # with t1: where this wall clock stands
        )
        raw = wire.encode_probe(
            ImageMeta(
                run_id=self.run_id,
                protocol=protocol,
                mode=mode,
                sequence=0,
                total=self.total,
                send_time_ns=t1,
                clock=self.clock,
                content_type="",
                sha256=b"",
                repetition=self.repetition,
                probe=info,
            )
        )
        try:
            raw_ack = await asyncio.wait_for(self.sender.send(raw), self.timeout_s)
            t4 = wire.read_clock(self.clock)
            ack = wire.decode_ack(raw_ack)
        except ReceiverRefused as exc:  # gRPC Send: a revision-1 receiver's INVALID_ARGUMENT
            return self._stop(f"receiver does not answer clock probes: {exc}")
        except (TimeoutError, ImageLost, MalformedMessage) as exc:
            return self._stop(f"clock probe failed: {exc or type(exc).__name__}")
        self._pending = []  # echoed (the receiver keeps them even if it refuses this probe)
        reply = wire.decode_probe_reply(ack)
        if ack.error or reply is None:
            why = ack.error or "the receiver answered without probe_reply (contract revision 1)"
            return self._stop(f"receiver does not answer clock probes: {why}")
        if reply.id != probe_id or reply.clock != self.clock:
            return self._stop(f"probe reply for id {reply.id} clock {reply.clock}, not {probe_id}")
        self._receiver_boot_id = reply.boot_id
        try:
            probe = Probe(t1, reply.receive_time_ns, reply.reply_time_ns, t4)
        except ClockError as exc:
            return self._stop(str(exc))
        self._pending.append(
            wire.Exchange(probe_id, group, t1, reply.receive_time_ns, reply.reply_time_ns, t4)
        )
        return probe if record else None

    def _stop(self, why: str) -> Probe | None:
        """Stop probing for this run (figures uncorrected); None for the caller to return."""
        self.unsupported = why
        log.warning(
            "clock probes stopped: figures stay uncorrected",
            protocol=self.sender.protocol,
            mode=self.sender.mode,
            detail=why,
        )
        return None
