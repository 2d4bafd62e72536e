"""The emulated link: a packet-level userspace forwarder between two TUN devices.

Why this design
---------------
The link must impose delay, jitter, rate and loss on *packets*, so that TCP's
own behaviour (slow start, loss recovery, restart after idle, flow-control
windows against the bandwidth-delay product) is what the transports meet. A
TCP proxy would terminate TCP on each side and hide exactly that.

The kernel's tool for this is ``netem``, but this machine's kernel has no
``sch_netem`` ("Specified qdisc kind is unknown"), and neither do many CI and
container kernels. ``tbf``/``htb`` can shape rate but cannot delay or drop.
A TUN device (``/dev/net/tun``) exists on practically every Linux kernel, so the
lab joins its two hosts with two TUN devices, one in each host's network
namespace, and this forwarder process moves every IP packet from one device
to the other. We use it everywhere, even where netem exists: one
implementation, the one CI on this kernel covers, measured by the lab's own
tests (:mod:`imgbench.lab.baseline`), rather than two paths of which CI sees
one.

What a packet goes through, per direction (A->B and B->A are independent and
identical)
  1. loss: dropped with probability ``loss`` (seeded RNG, as netem does at
     enqueue);
  2. bottleneck: if ``rate`` is set, a FIFO queue of at most ``queue`` packets
     (tail drop when full, like a router's or pfifo's queue), served at
     ``rate`` bit/s of IP bytes: each packet takes ``8 * len / rate`` seconds
     of serialisation after the previous one;
  3. propagation: delivered ``rtt/2`` after leaving the bottleneck, plus a
     uniform jitter in ``[-jitter, +jitter]`` (netem's default distribution),
     never earlier than the packet before it.

Packet order is kept (step 3's "never earlier"): netem reorders with jitter
unless a rate is set, but reordering is a different impairment from delay
variation (TCP reads 3 duplicate ACKs as a loss), so jitter here only varies
delay. The propagation stage has no limit (it is the wire, not a queue).

Measured on this machine (2 shared cores, busy with other jobs; MTU 1500): the
link adds 0.25-0.38 ms minimum, ~0.42 ms median RTT at ``rtt=0`` (UDP probe,
including the probe programs); unshaped it carries 410-560 Mbit/s of IP
packets in a bulk TCP transfer; shaped, it delivers 100 % of 100 Mbit/s, 98.5 %
of 200, 97 % of 300 and 90 % of 400 Mbit/s (rtt=10ms), so rates up to
300 Mbit/s are trustworthy here and the lab's tests use 100 Mbit/s.
A two-thread design (blocking read -> write per direction, no impairment at
all) reached 500-600 Mbit/s side by side with this loop's 440-455: the GIL
leaves little to gain, and adding delay, pacing and queueing to it needs
cross-thread hand-offs that cost more than that margin.

Implementation: one thread, ``select`` over the two TUN fds and a control pipe.
``select`` rather than ``epoll`` because Python's epoll timeout has 1 ms
resolution and select's has 1 us, which pacing at 100 Mbit/s (120 us per
1500-byte packet) needs. Each wakeup reads up to :data:`READ_BATCH` packets per
device until it would block. Everything runs in a separate process, so the
forwarder does not share a GIL with the measured programs; its CPU cost is
real, however, and bounds the rate it sustains (the lab's README section and
:func:`imgbench.lab.baseline.measure_baseline` give the measured ceiling).

Run as ``python -m imgbench.lab.link --fd-a N --fd-b M --spec-json JSON``
with the two TUN fds inherited; it stops when its stdin reaches end of file
(the parent closed it or died) or on SIGTERM, and prints its counters as one
JSON line on stdout (after a first line ``ready``, once it is forwarding).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field

from imgbench.lab.spec import LinkSpec

#: Packets read from one device per wakeup before serving the other (bounded so a
#: flood in one direction cannot starve the other or delay due deliveries).
READ_BATCH = 64


#: A delivery this much after its due time (seconds) counts in ``late_packets``.
LATE_THRESHOLD = 0.001


@dataclass
class DirectionStats:
    """Counters of one direction; every packet read ends in exactly one of
    ``lost``, ``dropped``, ``delivered`` or (at shutdown) ``in_flight``."""

    received: int = 0
    lost: int = 0  # random loss (the ``loss`` setting)
    dropped: int = 0  # tail drop at the full bottleneck queue
    delivered: int = 0
    delivered_bytes: int = 0
    write_errors: int = 0
    in_flight: int = 0
    max_queue: int = 0  # highest bottleneck occupancy seen (packets)
    #: Delivery after the packet's due time (the forwarder was busy or not scheduled):
    #: the largest lateness, microseconds, and the packets more than
    #: :data:`LATE_THRESHOLD` late. The link's own timing error, told apart from the
    #: programs it connects (whose scheduling a probe's round-trip time includes).
    late_max_us: int = 0
    late_packets: int = 0


@dataclass
class Direction:
    """One direction of the link: loss, bottleneck queue, propagation delay."""

    spec: LinkSpec
    rng: random.Random
    out_fd: int
    stats: DirectionStats = field(default_factory=DirectionStats)
    #: (deliver_at, packet), deliver_at non-decreasing (order is kept).
    pipe: deque[tuple[float, bytes]] = field(default_factory=deque)
    #: Serialisation end times of packets still in the bottleneck.
    backlog: deque[float] = field(default_factory=deque)
    link_free: float = 0.0
    last_deliver: float = 0.0

    def ingress(self, packet: bytes, now: float) -> None:
        """Take one packet that arrived at ``now`` (monotonic seconds)."""
        spec = self.spec
        self.stats.received += 1
        if spec.loss and self.rng.random() < spec.loss:
            self.stats.lost += 1
            return
        done = now
        if spec.rate is not None:
            backlog = self.backlog
            while backlog and backlog[0] <= now:
                backlog.popleft()
            if len(backlog) >= spec.queue:
                self.stats.dropped += 1
                return
            done = max(now, self.link_free) + len(packet) * 8 / spec.rate
            self.link_free = done
            backlog.append(done)
            if len(backlog) > self.stats.max_queue:
                self.stats.max_queue = len(backlog)
        delay = spec.rtt / 2
        if spec.jitter:
            delay = max(0.0, delay + self.rng.uniform(-spec.jitter, spec.jitter))
        at = max(done + delay, self.last_deliver)
        self.last_deliver = at
        self.pipe.append((at, packet))

    def egress(self, now: float) -> float | None:
        """Write every packet due by ``now``; return the next due time, if any."""
        pipe = self.pipe
        stats = self.stats
        while pipe:
            at, packet = pipe[0]
            if at > now:
                return at
            pipe.popleft()
            try:
                os.write(self.out_fd, packet)
            except OSError:
                # The receiving host's stack refused it (e.g. interface going
                # down at shutdown): counted, as a lost packet would be.
                stats.write_errors += 1
                continue
            stats.delivered += 1
            stats.delivered_bytes += len(packet)
            late = now - at
            if late > LATE_THRESHOLD:
                stats.late_packets += 1
            if late * 1e6 > stats.late_max_us:
                stats.late_max_us = int(late * 1e6)
        return None


class _Stop(Exception):
    pass


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Stop


def forward(fd_a: int, fd_b: int, control_fd: int, spec: LinkSpec) -> dict[str, DirectionStats]:
    """Forward packets between two non-blocking TUN fds until ``control_fd`` reads EOF.

    Returns the counters of ``a_to_b`` and ``b_to_a``.
    """
    # Distinct, repeatable streams per direction, both derived from the seed.
    a_to_b = Direction(spec, random.Random(spec.seed * 2), fd_b)
    b_to_a = Direction(spec, random.Random(spec.seed * 2 + 1), fd_a)
    sources = {fd_a: a_to_b, fd_b: b_to_a}
    bufsize = spec.mtu + 64
    watched = [fd_a, fd_b, control_fd]
    monotonic = time.monotonic
    try:
        while True:
            now = monotonic()
            due_ab = a_to_b.egress(now)
            due_ba = b_to_a.egress(now)
            if due_ab is None and due_ba is None:
                timeout: float | None = None
            else:
                due = min(d for d in (due_ab, due_ba) if d is not None)
                timeout = max(0.0, due - monotonic())
            readable, _, _ = select.select(watched, [], [], timeout)
            for fd in readable:
                if fd == control_fd:
                    if not os.read(control_fd, 4096):
                        raise _Stop
                    continue
                direction = sources[fd]
                now = monotonic()
                for _ in range(READ_BATCH):
                    try:
                        packet = os.read(fd, bufsize)
                    except BlockingIOError:
                        break
                    direction.ingress(packet, now)
    except _Stop:
        pass
    for direction in (a_to_b, b_to_a):
        direction.stats.in_flight = len(direction.pipe)
    return {"a_to_b": a_to_b.stats, "b_to_a": b_to_a.stats}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the forwarder process (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m imgbench.lab.link")
    parser.add_argument("--fd-a", type=int, required=True)
    parser.add_argument("--fd-b", type=int, required=True)
    parser.add_argument("--spec-json", required=True)
    args = parser.parse_args(argv)
    spec = LinkSpec(**json.loads(args.spec_json))
    # Ctrl-C reaches the whole foreground process group; the lab stops the
    # forwarder itself, after the programs using the link.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    for fd in (args.fd_a, args.fd_b):
        os.set_blocking(fd, False)
    print("ready", flush=True)
    stats = forward(args.fd_a, args.fd_b, sys.stdin.fileno(), spec)
    print(json.dumps({name: asdict(s) for name, s in stats.items()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
